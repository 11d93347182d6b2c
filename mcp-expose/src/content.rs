//! What tools, resources and prompts return: text, images, audio, embedded resources, or a mix.
//!
//! A tool that returns a type implementing [`IntoContents`] produces exactly those content
//! blocks. Any other `T: Serialize + JsonSchema` becomes `structuredContent` with an
//! `outputSchema` (see [`mod@crate::tool`]).

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// One block of content in a tool result or prompt message (rmcp's `ContentBlock`).
pub type Content = ContentBlock;

/// An image, sent base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    base64: String,
    mime_type: String,
}

impl Image {
    /// An image from raw bytes and a MIME type such as `image/png`.
    pub fn new(bytes: impl AsRef<[u8]>, mime_type: impl Into<String>) -> Self {
        Self {
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            mime_type: mime_type.into(),
        }
    }

    /// A PNG image from its bytes.
    pub fn png(bytes: impl AsRef<[u8]>) -> Self {
        Self::new(bytes, "image/png")
    }

    /// An image whose data is already base64-encoded.
    pub fn from_base64(base64: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Self {
            base64: base64.into(),
            mime_type: mime_type.into(),
        }
    }
}

/// Audio, sent base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    base64: String,
    mime_type: String,
}

impl Audio {
    /// Audio from raw bytes and a MIME type such as `audio/wav`.
    pub fn new(bytes: impl AsRef<[u8]>, mime_type: impl Into<String>) -> Self {
        Self {
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            mime_type: mime_type.into(),
        }
    }

    /// Audio whose data is already base64-encoded.
    pub fn from_base64(base64: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Self {
            base64: base64.into(),
            mime_type: mime_type.into(),
        }
    }
}

/// The contents of a resource: text or binary, with a URI and a MIME type.
///
/// Returned by `#[resource]` functions, and embedded in tool results and prompt messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    contents: ResourceContents,
}

impl Resource {
    /// Text contents.
    pub fn text(
        uri: impl Into<String>,
        mime_type: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            contents: ResourceContents::text(text, uri).with_mime_type(mime_type),
        }
    }

    /// Binary contents (sent base64-encoded).
    pub fn blob(
        uri: impl Into<String>,
        mime_type: impl Into<String>,
        bytes: impl AsRef<[u8]>,
    ) -> Self {
        let blob = base64::engine::general_purpose::STANDARD.encode(bytes);
        Self {
            contents: ResourceContents::blob(blob, uri).with_mime_type(mime_type),
        }
    }

    /// Binary contents already base64-encoded.
    pub fn blob_base64(
        uri: impl Into<String>,
        mime_type: impl Into<String>,
        base64: impl Into<String>,
    ) -> Self {
        Self {
            contents: ResourceContents::blob(base64, uri).with_mime_type(mime_type),
        }
    }

    pub(crate) fn into_contents(self) -> ResourceContents {
        self.contents
    }
}

impl From<Image> for Content {
    fn from(image: Image) -> Self {
        ContentBlock::image(image.base64, image.mime_type)
    }
}

impl From<Audio> for Content {
    fn from(audio: Audio) -> Self {
        ContentBlock::audio(audio.base64, audio.mime_type)
    }
}

impl From<Resource> for Content {
    fn from(resource: Resource) -> Self {
        ContentBlock::resource(resource.contents)
    }
}

/// Types a tool can return as plain content blocks (no structured output).
///
/// Implemented for strings (one text block), [`Content`], [`Image`], [`Audio`], [`Resource`],
/// vectors of those (several blocks, in order), `()` (no content), and rmcp's `CallToolResult`
/// (passed through unchanged).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned as tool content",
    label = "return a String, Content, Image, Audio, Resource, Vec<Content>, or a `T: Serialize + JsonSchema`"
)]
pub trait IntoContents {
    /// The tool result this value stands for.
    fn into_call_tool_result(self) -> CallToolResult;
}

macro_rules! into_contents_via_content {
    ($($ty:ty),*) => {$(
        impl IntoContents for $ty {
            fn into_call_tool_result(self) -> CallToolResult {
                CallToolResult::success(vec![Content::from(self)])
            }
        }
    )*};
}
into_contents_via_content!(Image, Audio, Resource, Content);

impl IntoContents for String {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(self)])
    }
}

impl IntoContents for &str {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(self)])
    }
}

impl IntoContents for () {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::success(Vec::new())
    }
}

impl IntoContents for CallToolResult {
    fn into_call_tool_result(self) -> CallToolResult {
        self
    }
}

impl<T: Into<Content>> IntoContents for Vec<T> {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::success(self.into_iter().map(Into::into).collect())
    }
}
