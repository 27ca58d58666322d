//! A remote in a local directory (`file:///ABS/PATH`): the same object
//! layout as a bucket prefix, for backups and server-free use.
//!
//! Objects are files written atomically (temporary file, fsync, rename, fsync
//! of the directory), so every write makes a new file. Entity tags come from
//! the file's identity (inode, length, modification time), read from the
//! same open handle as the bytes, so a tag always belongs to the bytes it is
//! returned with, and changes with every write. Conditional puts check and
//! rename while holding an exclusive `flock` on `ROOT/.s4db-remote.lock`, so
//! they are atomic across processes too.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{
    BoxFut, ListEntry, Object, ObjectMeta, ObjectStore, Prefix, PutMode, PutOutcome, Ranged,
};
use crate::error::{Error, IoContext, Result};
use crate::io::offload::offload;

const LOCK_NAME: &str = ".s4db-remote.lock";

#[derive(Debug)]
pub(crate) struct FileStore {
    root: PathBuf,
}

fn etag_of(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "\"{:x}-{:x}-{:x}.{:x}\"",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// Opens an object with its tag; `None` if there is none.
fn open_tagged(path: &Path) -> Result<Option<(File, u64, String)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let meta = file
        .metadata()
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(Some((file, meta.len(), etag_of(&meta))))
}

/// Reads `len` bytes at `start` of an open object.
fn read_part(file: &File, path: &Path, start: u64, len: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, start)
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(buf)
}

/// The tag of the object at `path` now, if there is one.
fn current_tag(path: &Path) -> Result<Option<String>> {
    Ok(open_tagged(path)?.map(|(_, _, t)| t))
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') {
        return Err(Error::InvalidArgument(format!("bad object key {key:?}")));
    }
    Ok(())
}

impl FileStore {
    pub(crate) fn new(root: PathBuf) -> Self {
        FileStore { root }
    }

    fn put_sync(root: &Path, key: &str, body: &[u8], mode: &PutMode) -> Result<PutOutcome> {
        fs::create_dir_all(root).ctx(|| format!("creating {}", root.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(LOCK_NAME))
            .ctx(|| format!("opening the lock of {}", root.display()))?;
        lock.lock().ctx(|| format!("locking {}", root.display()))?;
        let path = root.join(key);
        let allowed = match mode {
            PutMode::Overwrite => true,
            PutMode::Create => !path.exists(),
            PutMode::Update(tag) => current_tag(&path)?.is_some_and(|cur| cur == *tag),
        };
        if !allowed {
            return Ok(PutOutcome::PreconditionFailed);
        }
        // Objects get the permissions of the database's own files (0644
        // before the umask; tempfile's default is 0600), so a web server
        // running as another user can serve a file:// remote.
        let mut tmp = tempfile::Builder::new()
            .prefix(".upload.")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(root)
            .ctx(|| format!("creating a temporary file in {}", root.display()))?;
        tmp.write_all(body)
            .and_then(|()| tmp.as_file().sync_all())
            .ctx(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .ctx(|| format!("renaming into {}", path.display()))?;
        crate::io::fsutil::sync_dir(root)?;
        Ok(PutOutcome::Written(current_tag(&path)?))
    }
}

impl ObjectStore for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>> {
        Box::pin(async move {
            check_key(key)?;
            let path = self.root.join(key);
            offload(move || {
                let Some((file, len, etag)) = open_tagged(&path)? else {
                    return Ok(None);
                };
                Ok(Some(Object {
                    body: Bytes::from(read_part(&file, &path, 0, len)?),
                    etag,
                }))
            })
            .await
        })
    }

    fn get_range<'a>(&'a self, key: &'a str, start: u64, len: u64) -> BoxFut<'a, Option<Ranged>> {
        Box::pin(async move {
            check_key(key)?;
            let path = self.root.join(key);
            let key = key.to_string();
            offload(move || {
                let Some((file, size, etag)) = open_tagged(&path)? else {
                    return Ok(None);
                };
                if start.checked_add(len).is_none_or(|end| end > size) {
                    return Err(Error::remote(
                        format!(
                            "reading bytes {start}..{} of {key}",
                            start.saturating_add(len)
                        ),
                        None,
                        format!("the object is only {size} bytes"),
                    ));
                }
                let bytes = Bytes::from(read_part(&file, &path, start, len)?);
                Ok(Some(Ranged {
                    bytes,
                    etag: Some(etag),
                }))
            })
            .await
        })
    }

    fn get_prefix<'a>(
        &'a self,
        key: &'a str,
        max: u64,
        if_none_match: Option<&'a str>,
    ) -> BoxFut<'a, Prefix> {
        Box::pin(async move {
            check_key(key)?;
            let path = self.root.join(key);
            let inm = if_none_match.map(str::to_string);
            offload(move || {
                let Some((file, total, etag)) = open_tagged(&path)? else {
                    return Ok(Prefix::Missing);
                };
                if inm.as_deref() == Some(etag.as_str()) {
                    return Ok(Prefix::NotModified);
                }
                let bytes = Bytes::from(read_part(&file, &path, 0, total.min(max))?);
                Ok(Prefix::Got { bytes, etag, total })
            })
            .await
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            check_key(key)?;
            let path = self.root.join(key);
            offload(
                move || Ok(open_tagged(&path)?.map(|(_, size, etag)| ObjectMeta { size, etag })),
            )
            .await
        })
    }

    fn put<'a>(&'a self, key: &'a str, body: Bytes, mode: PutMode) -> BoxFut<'a, PutOutcome> {
        Box::pin(async move {
            check_key(key)?;
            let (root, key) = (self.root.clone(), key.to_string());
            offload(move || Self::put_sync(&root, &key, &body, &mode)).await
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, ()> {
        Box::pin(async move {
            for k in keys {
                check_key(k)?;
            }
            let (root, keys) = (self.root.clone(), keys.to_vec());
            offload(move || {
                for k in &keys {
                    let p = root.join(k);
                    match fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(format!("removing {}", p.display()), e)),
                    }
                }
                if root.exists() {
                    crate::io::fsutil::sync_dir(&root)?;
                }
                Ok(())
            })
            .await
        })
    }

    fn check(&self) -> BoxFut<'_, ()> {
        // The directory is created by the first write.
        Box::pin(async { Ok(()) })
    }

    fn list(&self) -> BoxFut<'_, Vec<ListEntry>> {
        Box::pin(async move {
            let root = self.root.clone();
            offload(move || {
                let mut out = Vec::new();
                let entries = match fs::read_dir(&root) {
                    Ok(e) => e,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(Error::io(format!("listing {}", root.display()), e)),
                };
                for entry in entries {
                    let entry = entry.ctx(|| format!("listing {}", root.display()))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let meta = entry
                        .metadata()
                        .ctx(|| format!("reading {}", entry.path().display()))?;
                    if name.starts_with('.') || !meta.is_file() {
                        continue;
                    }
                    out.push(ListEntry {
                        key: name,
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    });
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_puts_follow_s3_semantics() {
        let d = tempfile::tempdir().unwrap();
        let s = FileStore::new(d.path().join("remote"));
        assert_eq!(s.get("k").await.unwrap().map(|o| o.body), None);
        let PutOutcome::Written(Some(t1)) = s
            .put("k", Bytes::from_static(b"one"), PutMode::Create)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s.put("k", Bytes::from_static(b"x"), PutMode::Create)
                .await
                .unwrap(),
            PutOutcome::PreconditionFailed
        );
        assert_eq!(
            s.put(
                "k",
                Bytes::from_static(b"x"),
                PutMode::Update("\"wrong\"".into())
            )
            .await
            .unwrap(),
            PutOutcome::PreconditionFailed
        );
        assert!(matches!(
            s.put("k", Bytes::from_static(b"two"), PutMode::Update(t1.clone()))
                .await
                .unwrap(),
            PutOutcome::Written(_)
        ));
        assert_eq!(
            s.put("k", Bytes::from_static(b"3"), PutMode::Update(t1))
                .await
                .unwrap(),
            PutOutcome::PreconditionFailed
        );
        assert_eq!(
            s.put(
                "missing",
                Bytes::from_static(b"x"),
                PutMode::Update("\"a\"".into())
            )
            .await
            .unwrap(),
            PutOutcome::PreconditionFailed
        );
        let o = s.get("k").await.unwrap().unwrap();
        assert_eq!(&o.body[..], b"two");
        assert_eq!(s.head("k").await.unwrap().unwrap().etag, o.etag);
        assert_eq!(
            &s.get_range("k", 1, 2).await.unwrap().unwrap().bytes[..],
            b"wo"
        );
        assert!(s.get_range("k", 2, 5).await.is_err());
        assert_eq!(
            s.list()
                .await
                .unwrap()
                .iter()
                .map(|e| e.key.as_str())
                .collect::<Vec<_>>(),
            ["k"]
        );
        s.delete(&["k".to_string(), "nothing".to_string()])
            .await
            .unwrap();
        assert!(s.head("k").await.unwrap().is_none());
        assert!(s.get("../escape").await.is_err());
    }
}
