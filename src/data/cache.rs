//! Model inputs held in memory or mapped from a binary cache file ([`Floats`]): a table larger than memory
//! is encoded once into row-major `f32` files (one per split, [`CacheWriter`]) that the operating system
//! pages in as training reads them.

use crate::error::{Error, Result};
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Row-major `f32` inputs: owned, or a memory-mapped cache file.
#[derive(Clone)]
pub enum Floats {
    /// In memory.
    Owned(Vec<f32>),
    /// A read-only map of an anonymous cache file (it disappears with the last map).
    Mapped(Arc<memmap2::Mmap>),
}

impl Floats {
    /// True for a memory-mapped cache file (a table larger than memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self, Floats::Mapped(_))
    }

    /// The values as an owned vector (a copy when mapped).
    pub fn into_vec(self) -> Vec<f32> {
        match self {
            Floats::Owned(v) => v,
            Floats::Mapped(m) => bytes_as_floats(&m).to_vec(),
        }
    }
}

fn bytes_as_floats(bytes: &[u8]) -> &[f32] {
    if bytes.is_empty() {
        return &[];
    }
    // A map starts on a page boundary, so it is aligned for f32; the writer writes whole f32s.
    assert!((bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>()) && bytes.len().is_multiple_of(4));
    // SAFETY: aligned, a whole number of f32s, any bit pattern is a valid f32, and the map is read-only
    // and lives as long as the borrow.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f32, bytes.len() / 4) }
}

impl Deref for Floats {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Floats::Owned(v) => v,
            Floats::Mapped(m) => bytes_as_floats(m),
        }
    }
}

impl From<Vec<f32>> for Floats {
    fn from(v: Vec<f32>) -> Self {
        Floats::Owned(v)
    }
}

impl Default for Floats {
    fn default() -> Self {
        Floats::Owned(Vec::new())
    }
}

impl std::fmt::Debug for Floats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if matches!(self, Floats::Owned(_)) { "owned" } else { "mapped" };
        write!(f, "Floats({kind}, {} values)", self.len())
    }
}

impl PartialEq for Floats {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

/// Writes rows of `f32` to a cache file, then maps it. The file has no name from the start (an anonymous
/// file: `O_TMPFILE`, or created and unlinked at once; deleted on close elsewhere), so a process killed at
/// any moment (SIGKILL, a power cut) leaves nothing in the temporary directory: its space returns to the
/// disk with the last handle or map.
pub struct CacheWriter {
    dir: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    values: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl CacheWriter {
    /// A new anonymous cache file in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        let file = tempfile::tempfile_in(dir).map_err(io(dir))?;
        Ok(CacheWriter { out: std::io::BufWriter::with_capacity(1 << 20, file), dir: dir.to_path_buf(), values: 0 })
    }

    /// Appends values.
    pub fn write(&mut self, values: &[f32]) -> Result<()> {
        for v in values {
            self.out.write_all(&v.to_ne_bytes()).map_err(io(&self.dir))?;
        }
        self.values += values.len();
        Ok(())
    }

    /// Maps the written file (its data lives until the map is dropped).
    pub fn finish(self) -> Result<Floats> {
        let CacheWriter { dir, out, values } = self;
        let file = out.into_inner().map_err(|e| io(&dir)(e.into_error()))?;
        if values == 0 {
            return Ok(Floats::Owned(Vec::new()));
        }
        // SAFETY: the file is private to this process (anonymous: no other process can open it) and never
        // written again, so the mapped bytes cannot change underneath.
        unsafe { memmap2::Mmap::map(&file) }.map(|m| Floats::Mapped(Arc::new(m))).map_err(io(&dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_cache_reads_back_what_was_written_and_never_has_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CacheWriter::create(dir.path()).unwrap();
        let values: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.25 - 7.0).collect();
        w.write(&values[..3]).unwrap();
        w.write(&values[3..]).unwrap();
        let empty = |d: &Path| std::fs::read_dir(d).unwrap().next().is_none();
        assert!(empty(dir.path()), "a cache file being written has no name");
        let f = w.finish().unwrap();
        assert!(matches!(f, Floats::Mapped(_)));
        assert_eq!(&f[..], &values[..]);
        assert!(empty(dir.path()));
        assert_eq!(f.clone().into_vec(), values);
    }
}
