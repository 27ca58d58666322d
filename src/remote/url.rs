//! Parsing remote URLs (README "Remotes"):
//!
//! - `s3://BUCKET/PREFIX[?endpoint=URL&region=R&style=path|virtual&anonymous=true]`
//!   S3 or an S3-compatible store. Credentials, region and endpoint default to
//!   the standard AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
//!   `AWS_ENDPOINT_URL`); query parameters override them. Path style is the
//!   default when an endpoint is given, virtual-hosted style otherwise.
//! - `http://…`, `https://…`: read-only, unsigned GETs (public buckets, CDNs).
//! - `file:///ABS/PATH`, or a plain path (`/ABS/PATH`, `./REL`, `../REL`,
//!   relative to the working directory): the same object layout in a local
//!   directory.
//!
//! A prefix is validated: no empty, `.` or `..` segments, no control
//! characters. It is stored without leading or trailing slashes, and
//! percent-decoded: `s3://b/with%20space` and `s3://b/with space` both name
//! the object keys `with space/…`, exactly as typed. A `#` is refused (a URL
//! fragment would silently cut the prefix); write it as `%23`.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::error::{Error, Result};

/// Where an S3 remote lives and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct S3Location {
    pub endpoint: Url,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub path_style: bool,
    pub anonymous: bool,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never appear: only whether they are set.
        f.debug_struct("S3Location")
            .field("endpoint", &self.endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("anonymous", &self.anonymous)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A parsed remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteUrl {
    S3(S3Location),
    Http { base: Url },
    File { root: PathBuf },
}

/// Where the standard variables come from (the process environment, or a
/// test's map).
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

fn bad(url: &str, why: impl fmt::Display) -> Error {
    // The URL holds no secret (credentials never go in it), so it can be shown.
    Error::InvalidArgument(format!("bad remote URL {url:?}: {why}"))
}

/// Checks and normalises a key prefix, given as the URL's (percent-encoded)
/// path: the result is the object-key prefix, decoded.
pub(crate) fn clean_prefix(url: &str, raw: &str) -> Result<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad(url, "the prefix is not UTF-8 once percent-decoded"))?;
    let trimmed = decoded.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad(url, "the prefix has an empty, '.' or '..' segment"));
        }
        if seg.chars().any(char::is_control) {
            return Err(bad(url, "the prefix has a control character"));
        }
    }
    Ok(trimmed.to_string())
}

/// A local remote given as a plain path: absolute, or `./`/`../` relative to
/// the working directory.
fn plain_path(url: &str) -> Option<&str> {
    (url.starts_with('/')
        || url.starts_with("./")
        || url.starts_with("../")
        || url == "."
        || url == "..")
        .then_some(url)
}

impl RemoteUrl {
    pub(crate) fn parse_with_env(url: &str, env: &dyn Env) -> Result<Self> {
        if let Some(path) = plain_path(url) {
            let path = std::path::Path::new(path);
            let root = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| {
                        bad(
                            url,
                            format!("no working directory to resolve it against: {e}"),
                        )
                    })?
                    .join(path)
            };
            let root = normalize(&root).ok_or_else(|| bad(url, "the path climbs above /"))?;
            return Ok(RemoteUrl::File { root });
        }
        if url.contains('#') {
            return Err(bad(
                url,
                "'#' would start a URL fragment; write it as %23 if it is part of the prefix",
            ));
        }
        if let Some(rest) = url.strip_prefix("file:")
            && !rest.starts_with("//")
        {
            return Err(bad(
                url,
                format!(
                    "a file remote is file:///ABSOLUTE/PATH or a plain path (/ABSOLUTE/PATH, ./{rest})"
                ),
            ));
        }
        if !url.contains("://") {
            return Err(bad(
                url,
                "not a URL: use s3://BUCKET/PREFIX, https://HOST/PATH, file:///ABSOLUTE/PATH, or a local path starting with /, ./ or ../",
            ));
        }
        // The URL parser resolves "a/../b" to "b"; a prefix must never be
        // silently changed, so dot segments are refused as typed.
        let path_part = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path_part = path_part.split(['?', '#']).next().unwrap_or("");
        if path_part
            .split('/')
            .skip(1)
            .any(|seg| seg == "." || seg == "..")
        {
            return Err(bad(url, "the prefix has a '.' or '..' segment"));
        }
        let parsed = Url::parse(url).map_err(|e| bad(url, e))?;
        match parsed.scheme() {
            "s3" => Self::parse_s3(url, &parsed, env),
            "http" | "https" => {
                if parsed.host_str().is_none() {
                    return Err(bad(url, "no host"));
                }
                if parsed.query().is_some()
                    || !parsed.username().is_empty()
                    || parsed.password().is_some()
                {
                    return Err(bad(url, "an http(s) remote takes no query or user info"));
                }
                let prefix = clean_prefix(url, parsed.path())?;
                let mut base = parsed.clone();
                base.set_path(&if prefix.is_empty() {
                    "/".to_string()
                } else {
                    format!("/{prefix}/")
                });
                Ok(RemoteUrl::Http { base })
            }
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(bad(url, "a file URL must be file:///ABSOLUTE/PATH"));
                }
                let root = parsed
                    .to_file_path()
                    .map_err(|()| bad(url, "not an absolute local path"))?;
                clean_prefix(url, parsed.path())?;
                Ok(RemoteUrl::File { root })
            }
            other => Err(bad(
                url,
                format!("unknown scheme {other:?}; use s3://, http(s):// or file://"),
            )),
        }
    }

    fn parse_s3(url: &str, parsed: &Url, env: &dyn Env) -> Result<Self> {
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad(url, "no bucket"))?;
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad(
                url,
                "bucket names use lower-case letters, digits, '-' and '.'",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                url,
                "put credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not in the URL",
            ));
        }
        let prefix = clean_prefix(url, parsed.path())?;
        let (mut endpoint, mut region, mut style, mut anonymous) = (None, None, None, false);
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "endpoint" => endpoint = Some(v.into_owned()),
                "region" => region = Some(v.into_owned()),
                "style" => match &*v {
                    "path" => style = Some(true),
                    "virtual" => style = Some(false),
                    _ => return Err(bad(url, "style must be 'path' or 'virtual'")),
                },
                "anonymous" => match &*v {
                    "true" | "1" => anonymous = true,
                    "false" | "0" => anonymous = false,
                    _ => return Err(bad(url, "anonymous must be 'true' or 'false'")),
                },
                other => return Err(bad(url, format!("unknown parameter {other:?}"))),
            }
        }
        let region = region
            .or_else(|| env.var("AWS_REGION"))
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint_given = endpoint.clone().or_else(|| env.var("AWS_ENDPOINT_URL"));
        let path_style = style.unwrap_or(endpoint_given.is_some());
        let endpoint =
            endpoint_given.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = Url::parse(&endpoint).map_err(|e| bad(url, format!("endpoint: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(bad(url, "the endpoint must be an http(s) URL with a host"));
        }
        let (access_key, secret_key, session_token) = if anonymous {
            (None, None, None)
        } else {
            (
                env.var("AWS_ACCESS_KEY_ID"),
                env.var("AWS_SECRET_ACCESS_KEY"),
                env.var("AWS_SESSION_TOKEN"),
            )
        };
        if access_key.is_some() != secret_key.is_some() {
            return Err(bad(
                url,
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
            ));
        }
        // Without credentials, requests go unsigned (public buckets): never a
        // wait on instance-metadata lookups.
        let anonymous = anonymous || access_key.is_none();
        Ok(RemoteUrl::S3(S3Location {
            endpoint,
            bucket: bucket.to_string(),
            prefix,
            region,
            path_style,
            anonymous,
            access_key,
            secret_key,
            session_token,
        }))
    }

    /// A description for messages and state files: no credentials.
    ///
    /// Two remotes are the same remote exactly when their descriptions are
    /// equal: it names the endpoint, bucket and prefix (S3), the base URL
    /// (HTTP) or the directory (file).
    pub(crate) fn describe(&self) -> String {
        match self {
            RemoteUrl::S3(l) => format!("s3://{}/{} at {}", l.bucket, l.prefix, l.endpoint),
            RemoteUrl::Http { base } => base.to_string(),
            RemoteUrl::File { root } => format!("file://{}", root.display()),
        }
    }
}

/// `path` without `.` and `..` components (lexically); `None` if it climbs
/// above the root.
fn normalize(path: &std::path::Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> MapEnv {
        MapEnv(pairs.iter().copied().collect())
    }

    fn s3(url: &str, e: &MapEnv) -> S3Location {
        match RemoteUrl::parse_with_env(url, e).unwrap() {
            RemoteUrl::S3(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn s3_defaults_come_from_the_environment_and_the_query_overrides_them() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let l = s3("s3://bucket/a/b/", &e);
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str(), l.region.as_str()),
            ("bucket", "a/b", "eu-west-1")
        );
        assert_eq!(l.endpoint.as_str(), "https://s3.eu-west-1.amazonaws.com/");
        assert!(!l.path_style && !l.anonymous);
        let l = s3(
            "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1",
            &e,
        );
        assert!(l.path_style);
        assert_eq!(l.region, "us-east-1");
        assert_eq!(l.endpoint.as_str(), "http://127.0.0.1:9000/");
        let l = s3(
            "s3://bucket/p?endpoint=http://127.0.0.1:9000&style=virtual&anonymous=true",
            &e,
        );
        assert!(!l.path_style && l.anonymous && l.secret_key.is_none());
    }

    #[test]
    fn no_credentials_means_unsigned_requests() {
        assert!(s3("s3://bucket/p", &env(&[])).anonymous);
    }

    #[test]
    fn bad_urls_are_rejected_with_a_reason() {
        let e = env(&[]);
        for url in [
            "s3:///p",
            "s3://Bucket/p",
            "s3://b/a/../c",
            "s3://b/a//c",
            "s3://b/p?style=diagonal",
            "s3://b/p?color=red",
            "s3://user:pw@b/p",
            "s3://b/p?endpoint=ftp://x",
            "ftp://host/p",
            "http://host/p?x=1",
            "file://host/p",
            "not a url",
        ] {
            let err = RemoteUrl::parse_with_env(url, &e).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{url}: {err}");
        }
    }

    #[test]
    fn http_and_file_urls_parse() {
        let e = env(&[]);
        assert_eq!(
            RemoteUrl::parse_with_env("https://cdn.example.com/db/x", &e).unwrap(),
            RemoteUrl::Http {
                base: Url::parse("https://cdn.example.com/db/x/").unwrap()
            }
        );
        assert_eq!(
            RemoteUrl::parse_with_env("file:///tmp/remote", &e).unwrap(),
            RemoteUrl::File {
                root: PathBuf::from("/tmp/remote")
            }
        );
    }

    #[test]
    fn s3_prefixes_are_the_object_keys_as_typed_not_percent_encoded_twice() {
        let e = env(&[]);
        assert_eq!(s3("s3://bkt/with space", &e).prefix, "with space");
        assert_eq!(s3("s3://bkt/with%20space/x", &e).prefix, "with space/x");
        assert_eq!(s3("s3://bkt/ünï", &e).prefix, "ünï");
        assert_eq!(s3("s3://bkt/hash%23frag", &e).prefix, "hash#frag");
        for url in ["s3://bkt/hash#frag", "s3://bkt/bad%FF"] {
            let err = RemoteUrl::parse_with_env(url, &e).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{url}: {err}");
        }
    }

    #[test]
    fn plain_paths_are_local_remotes_and_file_without_slashes_is_refused() {
        let e = env(&[]);
        assert_eq!(
            RemoteUrl::parse_with_env("/tmp/some remote", &e).unwrap(),
            RemoteUrl::File {
                root: PathBuf::from("/tmp/some remote")
            }
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            RemoteUrl::parse_with_env("./frem", &e).unwrap(),
            RemoteUrl::File {
                root: cwd.join("frem")
            }
        );
        let err = RemoteUrl::parse_with_env("file:frem", &e).unwrap_err();
        assert!(
            err.to_string().contains("file:///ABSOLUTE/PATH") && err.to_string().contains("./frem"),
            "{err}"
        );
        let err = RemoteUrl::parse_with_env("frem", &e).unwrap_err();
        assert!(err.to_string().contains("./"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "TOPSECRET"),
            ("AWS_SESSION_TOKEN", "TOKEN123"),
        ]);
        let parsed = RemoteUrl::parse_with_env("s3://b/p", &e).unwrap();
        let dbg = format!("{parsed:?} {}", parsed.describe());
        assert!(
            !dbg.contains("TOPSECRET") && !dbg.contains("TOKEN123"),
            "{dbg}"
        );
        assert!(dbg.contains("AKID"));
    }
}
