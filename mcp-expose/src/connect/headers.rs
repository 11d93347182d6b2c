//! `--header 'Name: value'` and `--header-env Name=ENVVAR`: extra headers on every HTTP
//! request and on the WebSocket upgrade.
//!
//! `--header-env` exists because desktop clients on Windows split a config's `args` at spaces,
//! which breaks `--header "Authorization: Bearer ..."`; it also keeps secrets out of argv.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, ErrorKind, Result};

/// Headers the connector sets itself; a user value would break the protocol.
const RESERVED: &[&str] = &[
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "transfer-encoding",
    "upgrade",
];

/// Builds the header map from `Name: value` and `Name=ENVVAR` specs, reading `env` for the
/// latter (a parameter, so tests need not touch the process environment).
pub(crate) fn parse(
    headers: &[String],
    header_envs: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for spec in headers {
        let Some((name, value)) = spec.split_once(':') else {
            return Err(config(format!("--header {spec:?}: expected 'Name: value'")));
        };
        insert(&mut map, name, value.trim(), &format!("--header {name:?}"))?;
    }
    for spec in header_envs {
        let Some((name, var)) = spec.split_once('=') else {
            return Err(config(format!(
                "--header-env {spec:?}: expected Name=ENVVAR"
            )));
        };
        let var = var.trim();
        let value = env(var).ok_or_else(|| {
            config(format!(
                "--header-env {name}: environment variable {var} is not set"
            ))
        })?;
        insert(
            &mut map,
            name,
            value.trim(),
            &format!("--header-env {name}"),
        )?;
    }
    Ok(map)
}

fn insert(map: &mut HeaderMap, name: &str, value: &str, flag: &str) -> Result<()> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| config(format!("{flag}: invalid header name")))?;
    if RESERVED.contains(&name.as_str()) || name.as_str().starts_with("sec-websocket-") {
        return Err(config(format!(
            "{flag}: {name} is set by the connector itself"
        )));
    }
    // The message never echoes the value: it may be a secret.
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| config(format!("{flag}: the value is not a valid header value")))?;
    value.set_sensitive(true);
    map.append(name, value);
    Ok(())
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn literal_and_environment_headers() {
        let map = parse(
            &strings(&["X-Team: bio informatics", "x-trace:1"]),
            &strings(&["Authorization=TOKEN_VAR"]),
            |var| (var == "TOKEN_VAR").then(|| "Bearer s3cret".to_owned()),
        )
        .expect("valid");
        assert_eq!(map["x-team"], "bio informatics");
        assert_eq!(map["x-trace"], "1");
        assert_eq!(map["authorization"], "Bearer s3cret");
        assert!(map["authorization"].is_sensitive());
    }

    #[test]
    fn errors_are_clear() {
        let missing =
            parse(&[], &strings(&["Authorization=NOPE"]), |_| None).expect_err("missing variable");
        assert!(missing.to_string().contains("NOPE is not set"), "{missing}");
        assert!(parse(&strings(&["no colon"]), &[], |_| None).is_err());
        assert!(parse(&[], &strings(&["NoEquals"]), |_| None).is_err());
        assert!(parse(&strings(&["bad name: x"]), &[], |_| None).is_err());
        assert!(parse(&strings(&["X: a\u{7}b"]), &[], |_| None).is_err());
        let reserved =
            parse(&strings(&["Mcp-Session-Id: 1"]), &[], |_| None).expect_err("reserved");
        assert!(
            reserved.to_string().contains("connector itself"),
            "{reserved}"
        );
    }
}
