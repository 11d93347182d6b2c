//! The transports: stdio, streamable HTTP, WebSocket and legacy HTTP+SSE (2024-11-05), all
//! serving the same handler.
//!
//! stdio, WebSocket and legacy SSE share [`framed`]: a frame-oriented rmcp transport that answers frames it
//! cannot decode (rmcp's own stdio transport drops them silently).

pub(crate) mod decode;
pub(crate) mod framed;
pub(crate) mod http;
pub(crate) mod lines;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod related;
pub(crate) mod sse;
pub(crate) mod stdio;
pub(crate) mod ws;
