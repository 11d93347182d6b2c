//! The `WWW-Authenticate: Bearer ..` challenge of a 401 or 403 (RFC 6750 §3, RFC 9728 §5.1).

/// What a `Bearer` challenge asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `resource_metadata`: where the server's protected-resource metadata is (RFC 9728).
    pub(crate) resource_metadata: Option<String>,
    /// `scope`: the scopes this request needs.
    pub(crate) scope: Option<String>,
    /// `error`: `invalid_token`, `insufficient_scope`, ..
    pub(crate) error: Option<String>,
}

impl Challenge {
    /// The `Bearer` challenge among `values` (every `WWW-Authenticate` header of a response);
    /// an empty one when there is none.
    pub(crate) fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut challenge = Self::default();
        for value in values {
            for (name, value) in bearer_params(value) {
                let slot = match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => &mut challenge.resource_metadata,
                    "scope" => &mut challenge.scope,
                    "error" => &mut challenge.error,
                    _ => continue,
                };
                slot.get_or_insert(value);
            }
        }
        challenge
    }

    /// Whether the token is good but lacks a scope (`403 insufficient_scope`: step up).
    pub(crate) fn insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

/// The `name=value` parameters of the `Bearer` challenge in one header value (which may hold
/// several challenges, `Basic realm="x", Bearer scope="y"`).
fn bearer_params(header: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = header.trim_start();
    let mut in_bearer = false;
    while !rest.is_empty() {
        // A token: a scheme name, or a parameter name followed by `=`.
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        rest = rest[end..].trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            let (value, after) = parse_value(after.trim_start());
            rest = after;
            if in_bearer && !token.is_empty() {
                params.push((token.to_owned(), value));
            }
        } else if !token.is_empty() {
            in_bearer = token.eq_ignore_ascii_case("bearer");
        }
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    params
}

/// A quoted string (with `\` escapes) or a token, and what follows it.
fn parse_value(text: &str) -> (String, &str) {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(text.len());
        return (text[..end].to_owned(), &text[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[i + 1..]),
            c => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bearer_parameters() {
        let c = Challenge::parse([
            r#"Bearer resource_metadata="http://a/.well-known/oauth-protected-resource/mcp", scope="read write""#,
        ]);
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://a/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("read write"));
        assert!(!c.insufficient_scope());
    }

    #[test]
    fn skips_other_schemes_and_reads_escapes_and_tokens() {
        let c = Challenge::parse([
            r#"Basic realm="x, scope=\"no\"", Bearer error=insufficient_scope, scope="a \"b\"""#,
        ]);
        assert_eq!(c.scope.as_deref(), Some(r#"a "b""#));
        assert!(c.insufficient_scope());
        assert_eq!(c.resource_metadata, None);
    }

    #[test]
    fn nothing_from_a_missing_or_foreign_challenge() {
        assert_eq!(Challenge::parse([]), Challenge::default());
        assert_eq!(
            Challenge::parse([r#"Basic realm="x""#]),
            Challenge::default()
        );
        assert_eq!(Challenge::parse(["Bearer"]), Challenge::default());
    }
}
