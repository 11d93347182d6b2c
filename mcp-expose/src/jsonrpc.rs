//! JSON-RPC 2.0 as every layer speaks it: the error codes and the error response, written in
//! this one place. It imports nothing of the crate's own, so the transports, the bridge and the
//! connector all build on it. The table of codes is whole whichever features use them.

#[cfg(any(feature = "bridge", feature = "connect"))]
mod id;

#[cfg(any(feature = "bridge", feature = "connect"))]
pub(crate) use id::IdKey;

/// Invalid JSON was received.
pub(crate) const PARSE_ERROR: i32 = -32700;
/// The JSON is not a valid request object.
pub(crate) const INVALID_REQUEST: i32 = -32600;
/// The method does not exist or is not available.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub(crate) const METHOD_NOT_FOUND: i32 = -32601;
/// The method's parameters are invalid.
pub(crate) const INVALID_PARAMS: i32 = -32602;
/// The server failed inside.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub(crate) const INTERNAL_ERROR: i32 = -32603;
/// Server error: the server is unavailable (unreachable, restarting, busy, or the session that
/// would answer ended).
pub(crate) const SERVER_UNAVAILABLE: i32 = -32000;
/// Server error: no answer came within the request timeout (the MCP SDKs' `RequestTimeout`).
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub(crate) const REQUEST_TIMEOUT: i32 = -32001;
/// Server error: the HTTP session is unknown, in the number the MCP SDKs answer it with (the
/// same as [`REQUEST_TIMEOUT`]; the HTTP status tells them apart).
pub(crate) const SESSION_NOT_FOUND: i32 = -32001;

/// The error response to the request whose id is `id`: raw JSON text (`7`, `"a"`), `null` when
/// the id is unknown. The id is echoed byte for byte, as the client wrote it.
pub(crate) fn error(id: &str, code: i32, message: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses() {
        assert_eq!(
            error("7", SERVER_UNAVAILABLE, "gone \"x\""),
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"gone \"x\""}}"#
        );
        let reply: serde_json::Value =
            serde_json::from_str(&error("null", PARSE_ERROR, "é\n\u{0}")).expect("JSON");
        assert_eq!(reply["id"], serde_json::Value::Null);
        assert_eq!(reply["error"]["code"], -32700);
        assert_eq!(reply["error"]["message"], "é\n\u{0}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&error(r#""\u0041""#, 1, "m")).expect("JSON")
                ["id"],
            "A"
        );
    }
}
