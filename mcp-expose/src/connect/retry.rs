//! How long and how often to retry an unreachable server.

use std::time::Duration;

use crate::backoff::Backoff;

/// How long a message waits for the server to come back before its request is answered with
/// an error: long enough to ride out a restart, short enough for a person waiting on it.
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Limit for establishing one TCP/TLS/WebSocket connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may finish after stdin closed.
pub(crate) const DRAIN: Duration = Duration::from_secs(5);

/// The reconnect schedule: 100 ms doubling to 5 s.
pub(crate) fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
}

/// Whether a failure to connect may go away by retrying: a refused or reset connection, an
/// unreachable network, a failed DNS lookup (a restart, or a network still coming up). Not
/// TLS and certificate errors, nor protocol errors: those answer the client at once.
pub(crate) fn is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, Other, PermissionDenied};
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match (io.kind(), io.get_ref()) {
                // rustls' adapters report TLS failures as one of these.
                (InvalidData | InvalidInput | PermissionDenied, _) => return false,
                // An opaque wrapper (reqwest's TLS errors): judge by what it wraps.
                (Other, Some(inner)) => {
                    current = Some(inner);
                    continue;
                }
                _ => return true,
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_five_seconds() {
        let mut b = backoff();
        let delays: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn refusals_are_transient_tls_errors_are_not() {
        use std::io::{Error, ErrorKind};
        assert!(is_transient(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(is_transient(&Error::from(ErrorKind::TimedOut)));
        let tls = Error::new(ErrorKind::InvalidData, "invalid peer certificate");
        assert!(!is_transient(&tls));
        assert!(!is_transient(&Error::other(std::fmt::Error)));
        assert!(!is_transient(&std::fmt::Error));
    }
}
