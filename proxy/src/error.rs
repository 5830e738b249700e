//! Why the proxy (or one of its tools) could not start or do what was asked. Errors of a
//! request at run time are the domain's own: [`crate::upstream::UpstreamError`] (a node),
//! MQTT reason codes and HTTP statuses (a client), journal records (a device message).

use std::path::PathBuf;

/// A proxy error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The metrics recorder or listener could not start.
    #[error(transparent)]
    Metrics(#[from] fogchain_metrics::MetricsError),
    /// The config file is unreadable, not TOML of the expected shape, or inconsistent.
    #[error("proxy config: {0}")]
    Config(String),
    /// A client's or device's credentials in the config are malformed; or a password could not
    /// be hashed.
    #[error("credentials: {0}")]
    Credentials(String),
    /// A file (key, certificate, journal, shadow) could not be read or written.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Other I/O (sockets, the data directory).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A listener could not bind.
    #[error("{what} listen {addr}: {source}")]
    Listen {
        /// `HTTP` or `MQTT`.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS material is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// Certificates could not be issued.
    #[error("certificates: {0}")]
    Certs(String),
    /// The gateway key is unusable, or signing failed.
    #[error("gateway key: {0}")]
    Key(String),
    /// The MQTT broker could not start, or its address is malformed.
    #[error("MQTT broker: {0}")]
    Broker(String),
    /// A stored record (journal, shadow) is not what the proxy writes.
    #[error("{}: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The nodes serve another chain than the config names.
    #[error("the nodes serve chain id {nodes}, the proxy config says {config}")]
    ChainIdMismatch {
        /// The nodes' `eth_chainId`.
        nodes: u64,
        /// `[chain] chain-id`.
        config: u64,
    },
    /// A node's answer.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// The HTTP client for the nodes could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A stored JSON document (releases, shadows) is malformed.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A barcode could not be rendered.
    #[error("barcode: {0}")]
    Barcode(String),
}

/// The proxy's result type.
pub type Result<T> = std::result::Result<T, ProxyError>;

impl From<rcgen::Error> for ProxyError {
    fn from(e: rcgen::Error) -> Self {
        ProxyError::Certs(e.to_string())
    }
}

impl From<rustls::Error> for ProxyError {
    fn from(e: rustls::Error) -> Self {
        ProxyError::Tls(e.to_string())
    }
}

impl From<rustls::server::VerifierBuilderError> for ProxyError {
    fn from(e: rustls::server::VerifierBuilderError) -> Self {
        ProxyError::Tls(e.to_string())
    }
}

impl From<qrcode::types::QrError> for ProxyError {
    fn from(e: qrcode::types::QrError) -> Self {
        ProxyError::Barcode(e.to_string())
    }
}

impl From<png::EncodingError> for ProxyError {
    fn from(e: png::EncodingError) -> Self {
        ProxyError::Barcode(e.to_string())
    }
}
