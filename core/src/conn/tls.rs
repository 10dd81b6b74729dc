//! TLS under a connection: rustls's client state machine between the
//! adapter's bytes and the Kafka frames. rustls does no I/O itself: the
//! adapter's bytes go in through `receive`, what it must send comes out of
//! `take_outgoing`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::ServerName;

/// Why TLS failed on a connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's address cannot be a TLS server name.
    #[error("`{0}` is not a valid TLS server name")]
    InvalidServerName(String),
    /// The handshake or a record failed: an untrusted, expired or
    /// misnamed certificate, an alert from the broker, or bytes that are not
    /// TLS.
    #[error("{0}")]
    Rejected(rustls::Error),
    /// The connection closed before the TLS handshake finished (a plaintext
    /// listener closes on a ClientHello it reads as a huge frame).
    #[error(
        "the broker closed the connection during the TLS handshake \
         (is it a TLS listener?)"
    )]
    ClosedDuringHandshake,
    /// The broker answered a plaintext connection with TLS: its listener
    /// expects `SSL` or `SASL_SSL`.
    #[error("the broker answered with TLS: this listener needs security.protocol SSL or SASL_SSL")]
    ServerSpeaksTls,
}

/// What a `receive` left the session in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    Open,
    /// The broker sent close_notify: no more data will come.
    PeerClosed,
}

/// One connection's TLS client session.
#[derive(Debug)]
pub(super) struct TlsSession {
    tls: rustls::ClientConnection,
}

impl TlsSession {
    /// Starts a session to `host` (the broker's advertised host: SNI and
    /// the certificate's name check use it).
    pub(super) fn new(config: Arc<rustls::ClientConfig>, host: &str) -> Result<Self, TlsFailure> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsFailure::InvalidServerName(host.to_string()))?;
        let mut tls = rustls::ClientConnection::new(config, name).map_err(TlsFailure::Rejected)?;
        // Outgoing records are taken after every write, so the buffer never
        // grows; a limit would only cut requests short.
        tls.set_buffer_limit(None);
        Ok(Self { tls })
    }

    pub(super) fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// TLS records waiting to be sent, if any.
    pub(super) fn take_outgoing(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            // Writing into a Vec cannot fail.
            if self.tls.write_tls(&mut out).is_err() {
                break;
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// Encrypts `plaintext` (buffered by rustls until the handshake ends).
    pub(super) fn send(&mut self, plaintext: &[u8]) {
        // With no buffer limit the writer takes everything.
        let _ = self.tls.writer().write_all(plaintext);
    }

    /// Feeds bytes from the broker, handing each decrypted piece to
    /// `plaintext`. On an error, the alert for the broker (if any) is in
    /// `take_outgoing`.
    pub(super) fn receive(
        &mut self,
        mut data: &[u8],
        mut plaintext: impl FnMut(&[u8]),
    ) -> Result<Received, TlsFailure> {
        let mut received = Received::Open;
        while !data.is_empty() {
            if let Err(e) = self.tls.read_tls(&mut data) {
                return Err(TlsFailure::Rejected(rustls::Error::General(e.to_string())));
            }
            let state = self
                .tls
                .process_new_packets()
                .map_err(TlsFailure::Rejected)?;
            if state.peer_has_closed() {
                received = Received::PeerClosed;
            }
            let mut reader = self.tls.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(chunk) => {
                        let n = chunk.len();
                        plaintext(chunk);
                        reader.consume(n);
                    }
                }
            }
        }
        Ok(received)
    }
}
