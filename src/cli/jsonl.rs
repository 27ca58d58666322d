//! The JSON Lines format of `import` and `export` (README "Command line").
//!
//! One object per line: `{"key": "…", "value": "…"}` for UTF-8, or
//! `"value_b64"` (standard base64) for any bytes. Keys are `"key"`, or
//! `"key_b64"` for keys that are not UTF-8. Unknown fields are refused, so a
//! misspelt field name is an error rather than silently ignored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: Option<String>,
    key_b64: Option<String>,
    value: Option<String>,
    value_b64: Option<String>,
}

/// Parses one line into a key and a value; the error says what is wrong.
pub fn parse(line: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let l: Line = serde_json::from_str(line)
        .map_err(|e| format!("not a JSON object of the import format: {e}"))?;
    let key = match (l.key, l.key_b64) {
        (Some(k), None) => k.into_bytes(),
        (None, Some(k)) => STANDARD
            .decode(k)
            .map_err(|e| format!("key_b64 is not base64: {e}"))?,
        (None, None) => return Err("no \"key\"".into()),
        (Some(_), Some(_)) => return Err("both \"key\" and \"key_b64\"".into()),
    };
    let value = match (l.value, l.value_b64) {
        (Some(v), None) => v.into_bytes(),
        (None, Some(v)) => STANDARD
            .decode(v)
            .map_err(|e| format!("value_b64 is not base64: {e}"))?,
        (None, None) => return Err("no \"value\" or \"value_b64\"".into()),
        (Some(_), Some(_)) => return Err("both \"value\" and \"value_b64\"".into()),
    };
    Ok((key, value))
}

/// Renders one key as a line of `keys --json` (without the newline):
/// `{"key": …}`, or `{"key_b64": …}` for a key that is not UTF-8.
pub fn render_key(key: &[u8]) -> String {
    serde_json::Value::Object(key_fields(key)).to_string()
}

/// `{"key": …}`, or `{"key_b64": …}` for a key that is not UTF-8, as an
/// object to add fields to.
pub fn key_fields(key: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut obj = serde_json::Map::new();
    match std::str::from_utf8(key) {
        Ok(k) => obj.insert("key".into(), k.into()),
        Err(_) => obj.insert("key_b64".into(), STANDARD.encode(key).into()),
    };
    obj
}

/// A value as JSON: a string when it is UTF-8, else `{"b64": …}`.
pub fn value_json(value: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(value) {
        Ok(v) => v.into(),
        Err(_) => serde_json::json!({ "b64": STANDARD.encode(value) }),
    }
}

/// Renders one record as a line (without the newline).
pub fn render(key: &[u8], value: &[u8]) -> String {
    let mut obj = serde_json::Map::new();
    match std::str::from_utf8(key) {
        Ok(k) => obj.insert("key".into(), k.into()),
        Err(_) => obj.insert("key_b64".into(), STANDARD.encode(key).into()),
    };
    match std::str::from_utf8(value) {
        Ok(v) => obj.insert("value".into(), v.into()),
        Err(_) => obj.insert("value_b64".into(), STANDARD.encode(value).into()),
    };
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_text_and_bytes() {
        for (k, v) in [
            (&b"k"[..], &b"text \"quoted\"\n"[..]),
            (b"bin\xff", b"\x00\x01\xfe"),
        ] {
            assert_eq!(parse(&render(k, v)).unwrap(), (k.to_vec(), v.to_vec()));
        }
        assert_eq!(render(b"a", b"\xff"), r#"{"key":"a","value_b64":"/w=="}"#);
    }

    #[test]
    fn bad_lines_say_why() {
        for line in [
            "",
            "[]",
            "{}",
            r#"{"key":"a"}"#,
            r#"{"key":"a","value":"b","valeu":"c"}"#,
            r#"{"key":"a","value":"b","value_b64":"Yg=="}"#,
            r#"{"key":"a","value_b64":"!!"}"#,
            r#"{"key":1,"value":"b"}"#,
        ] {
            assert!(parse(line).is_err(), "{line}");
        }
    }
}
