//! MQTT over WebSocket (MQTT 5 §6, MQTT 3.1.1 §6): what browsers (MQTT.js, Paho JS) speak.
//!
//! The HTTP upgrade is soketto's (RFC 6455); the client must offer the `mqtt` subprotocol
//! (`mqttv3.1` is accepted too), any path is taken (`/mqtt` by convention). MQTT packets travel
//! in binary messages, which need not align with packet boundaries. Each connection is bridged
//! to an in-memory pipe that the ordinary [`Front`] session reads, so authentication, ACL and
//! the ack-after-journal rule are the same as over TCP.

use super::Front;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Subprotocols a client may ask for; the first one it offers is chosen.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];
/// Time a client gets for the HTTP upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes buffered between the WebSocket and the session in each direction.
const PIPE_BYTES: usize = 64 * 1024;

impl Front {
    /// Accepts MQTT over WebSocket on `listener` (TLS when `tls` is given) until the task is
    /// dropped.
    pub async fn serve_ws(self: Arc<Self>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        let limits = self.limits().clone();
        crate::tls::serve(listener, tls, "MQTT-WS", &limits, move |stream, peer, cn| {
            let this = self.clone();
            async move {
                if let Err(why) = this.websocket(stream, peer, cn).await {
                    tracing::info!(%peer, "MQTT over WebSocket closed: {why}");
                }
            }
        })
        .await
    }

    async fn websocket(
        self: Arc<Self>,
        stream: Box<dyn crate::tls::Stream>,
        peer: SocketAddr,
        cert_cn: Option<String>,
    ) -> Result<(), soketto::handshake::Error> {
        let mut server = soketto::handshake::Server::new(stream.compat());
        for p in SUBPROTOCOLS {
            server.add_protocol(p);
        }
        let upgrade = async {
            let request = server.receive_request().await?;
            let key = request.key();
            let protocol = request.protocols().find(|p| SUBPROTOCOLS.contains(p)).map(str::to_string);
            Ok::<_, soketto::handshake::Error>((key, protocol))
        };
        let (key, protocol) = match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let Some(protocol) = protocol else {
            // RFC 6455 §4.2.2: no subprotocol we speak
            server.send_response(&soketto::handshake::server::Response::Reject { status_code: 400 }).await?;
            return Ok(());
        };
        let accept = soketto::handshake::server::Response::Accept { key, protocol: Some(&protocol) };
        server.send_response(&accept).await?;
        let mut builder = server.into_builder();
        builder.set_max_message_size(self.max_packet() + 64);
        let (mut sender, mut receiver) = builder.finish();

        let (session_end, pipe_end) = tokio::io::duplex(PIPE_BYTES);
        let session = tokio::spawn(self.clone().run(session_end, peer, cert_cn));
        let (mut pipe_rd, mut pipe_wr) = tokio::io::split(pipe_end);
        let inbound = async {
            let mut message = Vec::new();
            loop {
                message.clear();
                if receiver.receive_data(&mut message).await.is_err()
                    || pipe_wr.write_all(&message).await.is_err()
                {
                    break;
                }
            }
            let _ = pipe_wr.shutdown().await;
        };
        let outbound = async {
            let mut chunk = vec![0u8; PIPE_BYTES];
            loop {
                match pipe_rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sender.send_binary(&chunk[..n]).await.is_err() || sender.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = sender.close().await;
        };
        tokio::select! {
            _ = inbound => {}
            _ = outbound => {}
        }
        session.abort();
        Ok(())
    }
}
