//! The S3 XML answers s4db reads, scanned leniently (some servers' bodies
//! are not quite the documented XML): ListObjectsV2 pages and error bodies.
//! One tag scanner serves both.

use std::time::SystemTime;

use super::ListEntry;

/// The text of `<name>…</name>` in `block`.
pub(crate) fn field<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let i = block.find(&open)? + open.len();
    let j = block[i..].find(&format!("</{name}>"))?;
    Some(&block[i..i + j])
}

/// Undoes XML's five predefined entities.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Parses one ListObjectsV2 page leniently: entries, and the continuation
/// token if the listing is truncated.
pub(crate) fn parse_list_page(xml: &str) -> (Vec<ListEntry>, Option<String>) {
    let mut out = Vec::new();
    for block in xml.split("<Contents>").skip(1) {
        let block = block.split("</Contents>").next().unwrap_or("");
        let Some(key) = field(block, "Key") else {
            continue;
        };
        let size = field(block, "Size")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let modified = field(block, "LastModified")
            .and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())
            .map(SystemTime::from);
        out.push(ListEntry {
            key: unescape(key),
            size,
            modified,
        });
    }
    let truncated = field(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let token = field(xml, "NextContinuationToken")
        .map(unescape)
        .filter(|_| truncated);
    (out, token)
}

/// The parts of an S3 XML error body that matter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub code: String,
    pub message: String,
    pub region: String,
}

/// Reads `<Code>`, `<Message>` and `<Region>` out of an S3 error body (a
/// lenient scan: some servers' bodies are not quite the documented XML).
pub(crate) fn parse_error_body(text: &str) -> ErrorBody {
    ErrorBody {
        code: field(text, "Code").map(unescape).unwrap_or_default(),
        message: field(text, "Message").map(unescape).unwrap_or_default(),
        region: field(text, "Region").map(unescape).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_parse_without_etags_and_follow_tokens() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>p/a&amp;b</Key><LastModified>2026-11-21T09:00:00.000Z</LastModified><Size>12</Size></Contents>\
            <Contents><Key>p/index.idx</Key><Size>3</Size></Contents>\
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        let (entries, token) = parse_list_page(xml);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key, "p/a&b");
        assert_eq!(entries[0].size, 12);
        assert!(entries[0].modified.is_some());
        assert_eq!(token.as_deref(), Some("tok"));
        let (_, token) = parse_list_page(
            "<IsTruncated>false</IsTruncated><NextContinuationToken>x</NextContinuationToken>",
        );
        assert_eq!(token, None);
    }
}
