//! The transports: stdio, streamable HTTP and WebSocket, all serving the same handler.
//!
//! stdio and WebSocket share [`framed`]: a frame-oriented rmcp transport that answers frames it
//! cannot decode (rmcp's own stdio transport drops them silently).

pub(crate) mod decode;
pub(crate) mod framed;
pub(crate) mod http;
pub(crate) mod lines;
pub(crate) mod stdio;
pub(crate) mod ws;
