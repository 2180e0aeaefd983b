//! Turning a `POST /v1/batch` request into messages to store.
//!
//! Reads the body under a size limit, undoes `Content-Encoding: gzip` under a second
//! limit (so a small gzip bomb cannot expand into gigabytes), finds the write key in
//! the places SDKs put it, and validates each message on its own: one malformed event
//! is counted and skipped, it never costs the rest of the batch.

use std::io::Read;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING};
use axum::http::{HeaderMap, Uri};
use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::store::NewMessage;

/// How much larger than `--max-body-bytes` a decompressed gzip body may be.
pub const DECOMPRESSION_FACTOR: usize = 8;

/// Message types of the Segment spec; anything else is rejected.
pub const MESSAGE_TYPES: [&str; 6] = ["track", "page", "screen", "identify", "group", "alias"];

/// Why a request body could not be turned into a batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body on the wire is over the limit.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The gzip body expands beyond the limit.
    #[error("decompressed request body is larger than {limit} bytes")]
    DecompressedTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A `Content-Encoding` other than identity or gzip.
    #[error("unsupported Content-Encoding {0:?}: send identity or gzip")]
    UnsupportedEncoding(String),
    /// The client went away or sent a broken chunked body.
    #[error("cannot read request body: {0}")]
    Read(#[source] axum::Error),
    /// `Content-Encoding: gzip` but the body is not gzip.
    #[error("body is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// The body is not JSON, or its fields have the wrong types.
    #[error("body is not a valid batch: {0}")]
    Json(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("body must be a JSON object")]
    NotAnObject,
    /// The object has no `batch` array.
    #[error("body has no \"batch\" array")]
    MissingBatch,
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// `Content-Encoding: gzip` (or the legacy `x-gzip`).
    Gzip,
}

/// Reads the `Content-Encoding` header.
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or_default().trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(IngestError::UnsupportedEncoding(text)),
    }
}

/// Reads the whole body, at most `limit` bytes.
///
/// Returns the number of bytes read from the wire along with the result. An oversized
/// body is still read (and discarded) up to a few times the limit before answering 413:
/// answering while the client is still sending would close the socket with unread data,
/// the kernel would reset the connection, and the client would see a network error
/// instead of the 413.
pub async fn read_body(body: Body, limit: usize) -> (u64, Result<Vec<u8>, IngestError>) {
    let drain_limit = limit.saturating_mul(4).max(8 << 20);
    let mut body = body;
    let mut bytes = Vec::new();
    let mut total: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => return (to_u64(total), Err(IngestError::Read(error))),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            bytes.extend_from_slice(&data);
        } else if total > drain_limit {
            break;
        }
    }
    if total > limit {
        return (to_u64(total), Err(IngestError::TooLarge { limit }));
    }
    (to_u64(total), Ok(bytes))
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Undoes the content encoding; a gzip body may expand to
/// `limit * DECOMPRESSION_FACTOR` bytes.
pub fn decode(body: Vec<u8>, encoding: Encoding, limit: usize) -> Result<Vec<u8>, IngestError> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => {
            let max = limit.saturating_mul(DECOMPRESSION_FACTOR);
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
            MultiGzDecoder::new(body.as_slice())
                .take(to_u64(max).saturating_add(1))
                .read_to_end(&mut out)
                .map_err(IngestError::Gzip)?;
            if out.len() > max {
                return Err(IngestError::DecompressedTooLarge { limit: max });
            }
            Ok(out)
        }
    }
}

/// The write key of `Authorization: Basic base64("<writeKey>:")`, if that header is
/// present. A header that is not usable Basic auth yields an empty key, which never
/// matches (empty write keys are refused by the configuration).
pub fn header_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?;
    let key = value
        .to_str()
        .ok()
        .and_then(|text| {
            let (scheme, credentials) = text.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let decoded = base64::engine::general_purpose::STANDARD.decode(credentials.trim()).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            // Segment puts the key in the user name; accept it in the password too.
            Some(match decoded.split_once(':') {
                Some(("", password)) => password.to_owned(),
                Some((user, _)) => user.to_owned(),
                None => decoded,
            })
        })
        .unwrap_or_default();
    Some(key)
}

/// The write key of a `?writeKey=` query parameter.
pub fn query_key(uri: &Uri) -> Option<String> {
    #[derive(Deserialize)]
    struct KeyQuery {
        #[serde(rename = "writeKey")]
        write_key: Option<String>,
    }
    axum::extract::Query::<KeyQuery>::try_from_uri(uri).ok().and_then(|query| query.0.write_key)
}

/// A parsed batch body.
#[derive(Debug, Default)]
pub struct ParsedBatch {
    /// Valid messages, in batch order.
    pub messages: Vec<NewMessage>,
    /// Entries of the `batch` array, valid or not.
    pub received: u64,
    /// Entries rejected: not an object, no string `messageId`, unknown `type`.
    pub rejected: u64,
    /// The body's `writeKey` field, used by `navigator.sendBeacon`, which cannot set
    /// headers.
    pub write_key: Option<String>,
}

/// The envelope; messages stay raw so they are stored exactly as sent.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

/// The fields of a message the store indexes; everything else is skipped unparsed.
#[derive(Deserialize)]
struct MessageHead {
    #[serde(rename = "messageId")]
    message_id: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    event: Option<Value>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<Value>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
    timestamp: Option<Value>,
}

/// Parses a (decoded) body. Fails only if the body as a whole is unusable; bad
/// messages are counted in [`ParsedBatch::rejected`].
pub fn parse_batch(body: &[u8]) -> Result<ParsedBatch, IngestError> {
    // serde would also read a struct from a JSON array, positionally; refuse that.
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{') {
        return Err(IngestError::NotAnObject);
    }
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(IngestError::Json)?;
    let raw_messages = envelope.batch.ok_or(IngestError::MissingBatch)?;
    let mut parsed = ParsedBatch {
        messages: Vec::with_capacity(raw_messages.len()),
        received: to_u64(raw_messages.len()),
        rejected: 0,
        write_key: envelope.write_key.and_then(|key| key.as_str().map(str::to_owned)),
    };
    for raw in raw_messages {
        match validate_message(raw) {
            Some(message) => parsed.messages.push(message),
            None => parsed.rejected += 1,
        }
    }
    Ok(parsed)
}

/// A storable message, or `None` if `raw` is not an object with a non-empty string
/// `messageId` and a known `type`.
pub fn validate_message(raw: &RawValue) -> Option<NewMessage> {
    let text = raw.get();
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let head: MessageHead = serde_json::from_str(text).ok()?;
    let message_id = head.message_id.as_ref().and_then(Value::as_str).filter(|id| !id.is_empty())?.to_owned();
    let kind =
        head.kind.as_ref().and_then(Value::as_str).filter(|kind| MESSAGE_TYPES.contains(kind))?.to_owned();
    Some(NewMessage {
        message_id,
        kind,
        event: string_field(head.event.as_ref()),
        anonymous_id: id_field(head.anonymous_id.as_ref()),
        user_id: id_field(head.user_id.as_ref()),
        timestamp: string_field(head.timestamp.as_ref()),
        json: text.to_owned(),
    })
}

fn string_field(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// Segment allows numeric ids; store them as their decimal text so filters match.
fn id_field(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn parses_and_rejects_individually() -> TestResult {
        let body = br#"{"batch":[
            {"type":"track","event":"Order Completed","messageId":"m1","anonymousId":"a1","userId":42,"timestamp":"2024-01-01T00:00:00Z","properties":{"total":3}},
            {"type":"track","event":"No id"},
            {"type":"bogus","messageId":"m2"},
            {"type":"page","messageId":""},
            [1,2],
            "text",
            {"type":"identify","messageId":"m3","userId":"u1"}
        ],"writeKey":"k","sentAt":"2024-01-01T00:00:01Z"}"#;
        let parsed = parse_batch(body)?;
        assert_eq!(parsed.received, 7);
        assert_eq!(parsed.rejected, 5);
        assert_eq!(parsed.write_key.as_deref(), Some("k"));
        let ids: Vec<_> = parsed.messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m3"]);
        let first = parsed.messages.first().ok_or("no message")?;
        assert_eq!(first.user_id.as_deref(), Some("42"));
        assert_eq!(first.event.as_deref(), Some("Order Completed"));
        assert!(first.json.contains(r#""properties":{"total":3}"#));
        Ok(())
    }

    #[test]
    fn whole_body_errors() {
        assert!(matches!(parse_batch(b"not json"), Err(IngestError::NotAnObject)));
        assert!(matches!(parse_batch(b"{nope"), Err(IngestError::Json(_))));
        assert!(matches!(parse_batch(b"[[], \"k\"]"), Err(IngestError::NotAnObject)));
        assert!(matches!(parse_batch(b"{}"), Err(IngestError::MissingBatch)));
        assert!(matches!(parse_batch(br#"{"batch":{}}"#), Err(IngestError::Json(_))));
        assert!(matches!(parse_batch(b""), Err(IngestError::Json(_))));
    }

    #[test]
    fn gzip_is_limited_after_decompression() -> TestResult {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b' '; 10_000])?;
        let gz = encoder.finish()?;
        assert_eq!(decode(gz.clone(), Encoding::Gzip, 2_000)?.len(), 10_000);
        assert!(matches!(
            decode(gz, Encoding::Gzip, 1_000),
            Err(IngestError::DecompressedTooLarge { limit: 8_000 })
        ));
        assert!(matches!(decode(b"plain".to_vec(), Encoding::Gzip, 1_000), Err(IngestError::Gzip(_))));
        Ok(())
    }

    #[test]
    fn write_key_from_basic_auth() -> TestResult {
        let mut headers = HeaderMap::new();
        assert_eq!(header_key(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic a2V5Og==")); // "key:"
        assert_eq!(header_key(&headers).as_deref(), Some("key"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("basic OmtleQ==")); // ":key"
        assert_eq!(header_key(&headers).as_deref(), Some("key"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer key"));
        assert_eq!(header_key(&headers).as_deref(), Some(""));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(header_key(&headers).as_deref(), Some(""));
        let uri: Uri = "/v1/batch?writeKey=abc%20d".parse()?;
        assert_eq!(query_key(&uri).as_deref(), Some("abc d"));
        Ok(())
    }

    #[test]
    fn content_encodings() {
        let mut headers = HeaderMap::new();
        assert!(matches!(content_encoding(&headers), Ok(Encoding::Identity)));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert!(matches!(content_encoding(&headers), Ok(Encoding::Gzip)));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(matches!(content_encoding(&headers), Err(IngestError::UnsupportedEncoding(_))));
    }
}
