//! Files written whole or not at all: every write goes to a temporary file with a name no other writer
//! uses (process id and a counter) in the same directory, then is renamed into place, so a crash never
//! leaves a half-written file and two processes writing the same path never trip over each other's
//! temporary file. Also the JSON reader with the file's name in its errors.

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// `dir/.NAME.PID.K.tmp` beside `path`: unique per process and call.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{k}.tmp", std::process::id()))
}

/// True for a temporary file of [`tmp_path`] (left behind only by a killed process).
pub fn is_tmp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Renames `tmp` onto `path` with the permissions of a file created normally (0644 under the usual
/// umask), removing `tmp` when that fails.
fn publish(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(tmp);
        Error::Io { path: path.to_path_buf(), source }
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(io(path))?;
    publish(&tmp, path)
}

/// Serialises to pretty JSON (with a final newline) and writes atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut s =
        serde_json::to_string_pretty(value).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Named tensors as the bytes of a safetensors file.
pub fn safetensors_bytes(
    path: &Path,
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.clone(), v)).collect::<Vec<_>>(), None)
        .map_err(|e| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })
}

/// Writes named tensors as safetensors atomically (the bytes are built in memory, so the file gets the
/// same permissions as every other file written here).
pub fn write_safetensors(path: &Path, tensors: &std::collections::HashMap<String, candle_core::Tensor>) -> Result<()> {
    write_atomic(path, &safetensors_bytes(path, tensors)?)
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes the temporary files of [`tmp_path`] in `dir` left by processes that no longer run (a killed
/// writer's): they never became real files.
pub fn remove_stale_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name.strip_suffix(".tmp").and_then(|n| n.rsplit('.').nth(1)).and_then(|p| p.parse::<u32>().ok());
        if is_tmp(&name) && pid.is_some_and(|p| !process_alive(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The crash-safety tests' hook: when the environment variable `FAIRBITS_PAUSE_AT` names `point`, the
/// process says so on stderr and waits there (`FAIRBITS_PAUSE_SECONDS`, default 60), so that a test can
/// kill or interrupt it at that moment. The points lie between whole steps of a run (`reading`,
/// `encoding`, `caching` (a streamed table's cache files half written), `training` after an epoch and its checkpoint, `evaluation`, `writing` between two files of a
/// model). Otherwise nothing happens.
pub fn pause_point(point: &str) {
    if std::env::var("FAIRBITS_PAUSE_AT").is_ok_and(|p| p == point) {
        let seconds = std::env::var("FAIRBITS_PAUSE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
        eprintln!("paused at {point}");
        std::thread::sleep(std::time::Duration::from_secs(seconds));
    }
}

/// Whether a process with this id runs on this machine.
pub fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Reads one JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path: path.to_path_buf(), source })
}

/// Creates a directory and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_unique_and_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        assert_ne!(tmp_path(&path), tmp_path(&path));
        // Many threads writing the same file: every write succeeds and the result is one of them.
        std::thread::scope(|scope| {
            for k in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_json(path, &k).unwrap();
                    }
                });
            }
        });
        let v: u32 = read_json(&path).unwrap();
        assert!(v < 8);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["a.json"]);
    }
}
