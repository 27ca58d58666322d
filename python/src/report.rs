//! Reports (`UploadReport`, `Stats`, …) as small immutable Python objects
//! with the same fields as in Rust: attribute access, `repr`, `==`, and
//! `_asdict()`. One class serves every report; its `kind` names which.

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A report: a kind and named fields, in order.
#[pyclass(frozen, module = "s4db_rs", name = "Report")]
pub(crate) struct Report {
    kind: &'static str,
    fields: Vec<(&'static str, Py<PyAny>)>,
}

#[pymethods]
impl Report {
    /// Which report this is, for example `"UploadReport"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone_ref(py))
            .ok_or_else(|| {
                PyAttributeError::new_err(format!("{} has no field {name:?}", self.kind))
            })
    }

    fn __dir__(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.fields.iter().map(|(n, _)| *n).collect();
        v.extend(["kind", "_asdict"]);
        v
    }

    /// The fields as a new `dict`.
    fn _asdict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, v) in &self.fields {
            d.set_item(n, v.bind(py))?;
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = Vec::with_capacity(self.fields.len());
        for (n, v) in &self.fields {
            parts.push(format!("{n}={}", v.bind(py).repr()?));
        }
        Ok(format!("{}({})", self.kind, parts.join(", ")))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Report>() else {
            return Ok(false);
        };
        let other = other.get();
        if other.kind != self.kind || other.fields.len() != self.fields.len() {
            return Ok(false);
        }
        for ((a, x), (b, y)) in self.fields.iter().zip(&other.fields) {
            if a != b || !x.bind(py).eq(y.bind(py))? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Builds a [`Report`] from a Rust report's fields:
/// `report!(py, "UploadReport", r, segments_uploaded, segment_bytes)`.
macro_rules! report {
    ($py:expr, $kind:literal, $r:expr, $($field:ident),+ $(,)?) => {{
        let r = &$r;
        $crate::report::Report::new($kind, vec![
            $((stringify!($field), pyo3::IntoPyObjectExt::into_py_any(r.$field.clone(), $py)?)),+
        ])
    }};
}

impl Report {
    pub(crate) fn new(kind: &'static str, fields: Vec<(&'static str, Py<PyAny>)>) -> Report {
        Report { kind, fields }
    }
}

/// A list of reports, for fields that hold several (damaged ranges).
pub(crate) fn list_of(py: Python<'_>, items: Vec<Report>) -> PyResult<Py<PyAny>> {
    let objs: Vec<Py<Report>> = items
        .into_iter()
        .map(|r| Py::new(py, r))
        .collect::<PyResult<_>>()?;
    Ok(PyList::new(py, objs)?.into_any().unbind())
}

/// Each s4db report as a [`Report`].
pub(crate) mod from {
    use pyo3::prelude::*;

    use super::{Report, list_of};

    pub(crate) fn damaged(py: Python<'_>, d: &s4db::DamagedRange) -> PyResult<Report> {
        Ok(report!(py, "DamagedRange", d, file, start, end, reason))
    }

    pub(crate) fn stats(py: Python<'_>, r: &s4db::Stats) -> PyResult<Report> {
        Ok(report!(
            py,
            "Stats",
            r,
            keys,
            segments,
            live_bytes,
            total_bytes,
            unindexed_changes,
            index_memory_bytes,
            index_mapped_bytes,
            index_runs,
            unuploaded_segments,
            damaged_files
        ))
    }

    pub(crate) fn compaction(py: Python<'_>, r: &s4db::CompactionReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "CompactionReport",
            r,
            segments_before,
            segments_after,
            bytes_before,
            bytes_after,
            records_written,
            segments_rewritten,
            records_expired
        ))
    }

    /// Damaged ranges as a list of `DamagedRange` reports.
    fn damaged_list(py: Python<'_>, ranges: &[s4db::DamagedRange]) -> PyResult<Py<PyAny>> {
        let reports = ranges
            .iter()
            .map(|d| damaged(py, d))
            .collect::<PyResult<Vec<_>>>()?;
        list_of(py, reports)
    }

    pub(crate) fn migrate(py: Python<'_>, r: &s4db::MigrateReport) -> PyResult<Report> {
        let mut out = report!(
            py,
            "MigrateReport",
            r,
            keys,
            written,
            unchanged,
            deleted,
            files_read,
            bytes_read
        );
        out.fields.push(("skipped", damaged_list(py, &r.skipped)?));
        Ok(out)
    }

    pub(crate) fn rebuild(py: Python<'_>, r: &s4db::RebuildReport) -> PyResult<Report> {
        let torn_tail = match &r.torn_tail {
            Some(d) => Py::new(py, damaged(py, d)?)?.into_any(),
            None => py.None(),
        };
        let mut out = report!(
            py,
            "RebuildReport",
            r,
            segments,
            superseded_segments,
            records,
            keys,
            damaged_files
        );
        out.fields.push(("skipped", damaged_list(py, &r.skipped)?));
        out.fields.push(("torn_tail", torn_tail));
        out.fields
            .push(("repaired", damaged_list(py, &r.repaired)?));
        Ok(out)
    }

    pub(crate) fn verify(py: Python<'_>, r: &s4db::VerifyReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "VerifyReport",
            r,
            segments,
            records,
            bytes,
            keys,
            problems
        ))
    }

    pub(crate) fn upload(py: Python<'_>, r: &s4db::UploadReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "UploadReport",
            r,
            segments_uploaded,
            segment_bytes,
            index_bytes,
            runs_uploaded,
            run_bytes,
            segments_obsoleted,
            rebased
        ))
    }

    pub(crate) fn download(py: Python<'_>, r: &s4db::DownloadReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "DownloadReport",
            r,
            segments_downloaded,
            segment_bytes,
            segments_present,
            keys
        ))
    }

    pub(crate) fn restore(py: Python<'_>, r: &s4db::RestoreReport) -> PyResult<Report> {
        let rebuild = Py::new(py, rebuild(py, &r.rebuild)?)?.into_any();
        let mut out = report!(
            py,
            "RestoreReport",
            r,
            segments_downloaded,
            segment_bytes,
            segments_present
        );
        out.fields.push(("rebuild", rebuild));
        Ok(out)
    }

    pub(crate) fn gc(py: Python<'_>, r: &s4db::GcReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "GcReport",
            r,
            obsolete_deleted,
            orphans_deleted,
            stages_deleted,
            kept,
            deleted
        ))
    }

    pub(crate) fn stage(py: Python<'_>, r: &s4db::StageReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "StageReport",
            r,
            segments_uploaded,
            segment_bytes,
            runs_uploaded,
            run_bytes,
            manifest_bytes,
            keys
        ))
    }

    pub(crate) fn ingest(py: Python<'_>, r: &s4db::IngestReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "IngestReport",
            r,
            shards,
            segments_added,
            runs_added,
            keys_added,
            index_bytes,
            manifest_bytes,
            rebased,
            manifests_removed
        ))
    }

    /// `Changes(puts, deletes, compacted, changes)`, where `changes` lists
    /// `(key, "put" | "delete", value_len | None)`; `key` converts a key.
    pub(crate) fn changes(
        py: Python<'_>,
        c: &s4db::Changes,
        key: impl Fn(&[u8]) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Report> {
        let mut list = Vec::with_capacity(c.len());
        for ch in c {
            let kind = match ch.kind {
                s4db::ChangeKind::Delete => "delete",
                _ => "put",
            };
            list.push((key(&ch.key)?, kind, ch.value_len).into_pyobject(py)?);
        }
        let mut out = report!(py, "Changes", c, puts, deletes, compacted, restored);
        out.fields.push((
            "changes",
            pyo3::types::PyList::new(py, list)?.into_any().unbind(),
        ));
        Ok(out)
    }

    pub(crate) fn discard(py: Python<'_>, r: &s4db::DiscardReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "DiscardReport",
            r,
            keys_discarded,
            records_kept
        ))
    }

    pub(crate) fn delete_remote(py: Python<'_>, r: &s4db::DeleteRemoteReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "DeleteRemoteReport",
            r,
            objects_deleted,
            bytes_deleted,
            had_root
        ))
    }

    pub(crate) fn copy_remote(py: Python<'_>, r: &s4db::CopyRemoteReport) -> PyResult<Report> {
        Ok(report!(
            py,
            "CopyRemoteReport",
            r,
            segments_copied,
            copied_server_side,
            segments_present,
            bytes_copied,
            keys
        ))
    }
}
