//! `fogchain proxy certs`: a private CA, a server certificate and device client certificates
//! (ECDSA P-256, rcgen) for HTTPS / MQTTS with X.509 client authentication.
//!
//! Files in `DIR`: `ca.pem` + `ca.key` (created once, reused), `server.pem` + `server.key` (SANs:
//! the given hosts), and `<device>.pem` + `<device>.key` (CN = device id, clientAuth).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::Path;

/// Certificates valid for this many days.
const DAYS: i64 = 825;

fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(DAYS as u64 * 86_400)).into();
}

fn write_private(path: &Path, text: &str) -> crate::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Makes (or reuses) the CA in `dir`, then a server certificate for `hosts` (DNS names or IP
/// addresses) when `hosts` is not empty, and one client certificate per device id.
pub fn issue(dir: &Path, hosts: &[String], devices: &[String]) -> crate::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let (ca_pem, ca_key_pem) = (dir.join("ca.pem"), dir.join("ca.key"));
    let mut written = Vec::new();
    let (ca_params, ca_key) = if ca_pem.exists() && ca_key_pem.exists() {
        let key = KeyPair::from_pem(&std::fs::read_to_string(&ca_key_pem)?)?;
        (CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(&ca_pem)?)?, key)
    } else {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "Fogchain proxy CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let cert = params.clone().self_signed(&key)?;
        std::fs::write(&ca_pem, cert.pem())?;
        write_private(&ca_key_pem, &key.serialize_pem())?;
        written.extend([ca_pem.display().to_string(), ca_key_pem.display().to_string()]);
        (params, key)
    };
    let ca = ca_params.self_signed(&ca_key)?;
    let mut leaf = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| -> crate::Result<()> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        let file = if name == "server" { "server".to_string() } else { name.to_string() };
        let (pem, key_path) = (dir.join(format!("{file}.pem")), dir.join(format!("{file}.key")));
        std::fs::write(&pem, cert.pem())?;
        write_private(&key_path, &key.serialize_pem())?;
        written.extend([pem.display().to_string(), key_path.display().to_string()]);
        Ok(())
    };
    if !hosts.is_empty() {
        leaf("server", hosts.to_vec(), ExtendedKeyUsagePurpose::ServerAuth)?;
    }
    for d in devices {
        if !crate::config::valid_device_id(d) || d == "server" || d == "ca" {
            return Err(crate::error::ProxyError::Certs(format!(
                "device id {d:?}: use 1 to 64 of A-Z a-z 0-9 _ - (not \"server\" or \"ca\")"
            )));
        }
        leaf(d, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
    }
    Ok(written)
}
