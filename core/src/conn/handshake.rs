//! The connection handshake after TCP (and TLS): ApiVersions, with a retry
//! at the broker's version when it does not know ours, then SASL when
//! configured (SaslHandshake v1, SaslAuthenticate until the mechanism is
//! done), then ready. KIP-368 renewals run the SASL steps again on a ready
//! connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::sasl::{self, AuthFailure};
use super::{Conn, ConnectionProblem, Connections, HandshakeFailure, Io, Outcome, State};
use crate::error::Error;
use crate::protocol::messages::{
    ApiVersionsRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use crate::protocol::{ApiKey, ErrorCode, SecretBytes, VersionRange, decode_response, negotiate};
use crate::timer::{Timer, TimerTable};
use crate::types::ConnId;

impl<P> Connections<P> {
    pub(super) fn send_api_versions(
        client_id: &str,
        io: &mut VecDeque<Io>,
        id: ConnId,
        c: &mut Conn<P>,
        version: i16,
    ) {
        let request = ApiVersionsRequest {
            client_software_name: "odradek".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
        };
        // Encoding a fixed request with two short strings cannot fail.
        if let Some(correlation_id) = c.send_request(id, io, client_id, &request, version) {
            c.state = State::ApiVersions {
                version,
                correlation_id,
            };
        }
    }

    pub(super) fn handle_api_versions(
        &mut self,
        conn: ConnId,
        frame: Bytes,
        version: i16,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Result<(), HandshakeFailure> {
        let ours = ApiKey::ApiVersions.versions();
        let response = match decode_response::<ApiVersionsRequest>(frame.clone(), version) {
            Ok((_, response)) if response.error_code != ErrorCode::UNSUPPORTED_VERSION.0 => {
                response
            }
            first => {
                // A broker that does not know our version answers in v0,
                // listing the ApiVersions versions it does support.
                let (_, v0) =
                    decode_response::<ApiVersionsRequest>(frame, 0).map_err(|e| match first {
                        Err(first) => HandshakeFailure::Unreadable(first),
                        Ok(_) => HandshakeFailure::Unreadable(e),
                    })?;
                let theirs = v0
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions.code())
                    .map(|k| VersionRange::new(k.min_version, k.max_version));
                let retry = negotiate("ApiVersions", ours, theirs)
                    .map_err(HandshakeFailure::NoCommonVersion)?;
                if retry >= version {
                    return Err(HandshakeFailure::Contradiction(version));
                }
                let Some(c) = self.conns.get_mut(&conn) else {
                    return Ok(());
                };
                Self::send_api_versions(&self.config.client_id, &mut self.io, conn, c, retry);
                return Ok(());
            }
        };
        if response.error_code != 0 {
            return Err(HandshakeFailure::Refused(ErrorCode(response.error_code)));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        // Unsorted, possibly with APIs we do not know: keep what we read.
        c.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
            .collect();
        for &api in &self.config.required {
            let theirs = c.versions.get(&api.code()).copied();
            if let Err(source) = negotiate(api.name(), api.versions(), theirs) {
                let broker = c.address.clone();
                let problem = ConnectionProblem::LacksApi(source.clone());
                self.outcomes
                    .push_back(Outcome::Fatal(Error::UnsupportedBroker { broker, source }));
                self.drop_conn(conn, problem, now, true, timers);
                return Ok(());
            }
        }
        if self.config.sasl.is_some() {
            if let Err(e) = self.start_sasl(conn, false, now) {
                let problem = ConnectionProblem::Authentication(e);
                self.drop_conn(conn, problem, now, true, timers);
            }
            return Ok(());
        }
        self.become_ready(conn, timers);
        Ok(())
    }

    /// The handshake is complete: requests may go out.
    pub(super) fn become_ready(&mut self, conn: ConnId, timers: &mut TimerTable) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.state = State::Ready;
        let renewed = std::mem::take(&mut c.reauthenticating);
        self.rearm(conn, timers);
        if renewed {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let node = c.node;
        if let Some(state) = self.nodes.get_mut(&node) {
            state.failures = 0;
        }
        timers.stop(&Timer::Reconnect(node));
        tracing::debug!(
            broker = %c.address,
            %conn,
            tls = c.tls.is_some(),
            apis = c.versions.len(),
            "connection ready"
        );
        self.outcomes.push_back(Outcome::Ready);
    }

    /// Sends SaslHandshake naming the mechanism: the start of an
    /// authentication, or of a re-authentication (`renew`) on a ready
    /// connection with nothing in flight.
    pub(super) fn start_sasl(
        &mut self,
        conn: ConnId,
        renew: bool,
        now: Instant,
    ) -> Result<(), AuthFailure> {
        let Some(sasl) = &self.config.sasl else {
            return Ok(());
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        // v0 carries the exchange in raw frames; only v1 wraps it in
        // SaslAuthenticate, which is what this client speaks.
        let ours = VersionRange::new(1, 1);
        let theirs = c.versions.get(&ApiKey::SaslHandshake.code()).copied();
        negotiate("SaslHandshake", ours, theirs).map_err(AuthFailure::NoSaslSupport)?;
        let request = SaslHandshakeRequest {
            mechanism: sasl.mechanism().name().into(),
        };
        if let Some(correlation_id) =
            c.send_request(conn, &mut self.io, &self.config.client_id, &request, 1)
        {
            c.state = State::SaslHandshake { correlation_id };
        }
        if renew {
            c.reauthenticating = true;
            c.reauthenticate_at = None;
            c.setup_deadline = now + self.config.request_timeout;
        }
        Ok(())
    }

    /// A SaslHandshake or SaslAuthenticate answer.
    pub(super) fn handle_sasl(
        &mut self,
        conn: ConnId,
        frame: Bytes,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Result<(), AuthFailure> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let (Some(sasl), Some(security)) = (&self.config.sasl, &self.config.security) else {
            return Ok(());
        };
        if !matches!(
            c.state,
            State::SaslHandshake { .. } | State::SaslAuthenticate { .. }
        ) {
            return Ok(());
        }
        // Taken out while the exchange runs; an error drops the connection.
        let mut state = std::mem::replace(&mut c.state, State::Connecting);
        let message = match &mut state {
            State::SaslHandshake { .. } => {
                let (_, response) = decode_response::<SaslHandshakeRequest>(frame, 1)
                    .map_err(AuthFailure::Unreadable)?;
                match ErrorCode(response.error_code) {
                    ErrorCode::NONE => {}
                    ErrorCode::UNSUPPORTED_SASL_MECHANISM => {
                        return Err(AuthFailure::UnsupportedMechanism {
                            requested: sasl.mechanism().name(),
                            enabled: response.mechanisms,
                        });
                    }
                    code => return Err(AuthFailure::HandshakeRefused(code)),
                }
                let theirs = c.versions.get(&ApiKey::SaslAuthenticate.code()).copied();
                let version = negotiate(
                    "SaslAuthenticate",
                    ApiKey::SaslAuthenticate.versions(),
                    theirs,
                )
                .map_err(AuthFailure::NoSaslSupport)?;
                let (exchange, first) =
                    sasl::Exchange::start(sasl, security, &mut self.tokens, &c.address.host)?;
                state = State::SaslAuthenticate {
                    version,
                    correlation_id: 0,
                    exchange,
                };
                first
            }
            State::SaslAuthenticate {
                version, exchange, ..
            } => {
                let (_, response) = decode_response::<SaslAuthenticateRequest>(frame, *version)
                    .map_err(AuthFailure::Unreadable)?;
                if response.error_code != 0 {
                    let message = response.error_message.filter(|m| !m.is_empty());
                    return Err(exchange.refusal(ErrorCode(response.error_code), message));
                }
                match exchange.next(&response.auth_bytes.0)? {
                    sasl::Step::Send(message) => message,
                    sasl::Step::Done => {
                        let lifetime = u64::try_from(response.session_lifetime_ms).unwrap_or(0);
                        c.reauthenticate_at = (lifetime > 0).then(|| {
                            now + sasl::reauthenticate_after(Duration::from_millis(lifetime))
                        });
                        self.become_ready(conn, timers);
                        return Ok(());
                    }
                }
            }
            _ => return Ok(()),
        };
        let State::SaslAuthenticate {
            version,
            correlation_id,
            ..
        } = &mut state
        else {
            return Ok(());
        };
        let request = SaslAuthenticateRequest {
            auth_bytes: SecretBytes(message.0),
        };
        if let Some(id) = c.send_request(
            conn,
            &mut self.io,
            &self.config.client_id,
            &request,
            *version,
        ) {
            *correlation_id = id;
        }
        c.state = state;
        Ok(())
    }
}
