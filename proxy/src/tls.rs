//! TLS for HTTPS and MQTTS (rustls, ring provider) and the identity in a client certificate.

use crate::{
    config::{LimitsConfig, TlsConfig},
    guard::Caps,
};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};

/// A client connection, plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Accepts connections on `listener` until the task is dropped; with `tls`, completes the
/// handshake first (within `[limits] tls-handshake-timeout-ms`) and reads the client
/// certificate's CN. Each connection runs `handle(stream, peer, cn)` on its own task.
/// Connections over `max-connections` (per listener) or `max-connections-per-ip` are closed at
/// once. `what` names the listener in logs and metrics.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    what: &'static str,
    limits: &LimitsConfig,
    handle: F,
) where
    F: Fn(Box<dyn Stream>, SocketAddr, Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let handle = Arc::new(handle);
    let caps = Caps::<std::net::IpAddr>::connections(limits);
    let handshake_timeout = Duration::from_millis(limits.tls_handshake_timeout_ms);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a {what} connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = match caps.admit(peer.ip()) {
            Ok(a) => a,
            Err(cap) => {
                tracing::debug!(%peer, cap, "{what} connection refused: over the cap");
                metrics::counter!("fogchain_proxy_connections_refused_total", "listener" => what, "cap" => cap)
                    .increment(1);
                continue; // dropping the stream closes it
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let cn = peer_common_name(s.get_ref().1.peer_certificates());
                            handle(Box::new(s), peer, cn).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "{what}: TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "{what}: TLS handshake timed out"),
                    }
                }
                None => handle(Box::new(stream), peer, None).await,
            }
        });
    }
}

/// A rustls server config for `tls`. With `client-ca`, clients *may* present a certificate
/// signed by that CA (others still connect and authenticate by password or token).
pub fn server_config(tls: &TlsConfig, alpn: &[&[u8]]) -> crate::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| crate::error::ProxyError::Tls(format!("reading {}: {e}", tls.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| crate::error::ProxyError::Tls(format!("reading {}: {e}", tls.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| crate::error::ProxyError::Tls(format!("reading {}: {e}", tls.key.display())))?;
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| crate::error::ProxyError::Tls(format!("reading {}: {e}", ca.display())))?
            {
                roots
                    .add(c.map_err(|e| {
                        crate::error::ProxyError::Tls(format!("reading {}: {e}", ca.display()))
                    })?)
                    .map_err(|e| crate::error::ProxyError::Tls(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The subject common name of a verified client certificate chain's end-entity certificate.
pub fn peer_common_name(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let der = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}
