//! The Node.js scripts (`server/node/`), built into the binary so a
//! self-hosted server needs nothing beside it, and written out once to a
//! private folder that `node` can run them from.

use std::io;
use std::path::{Path, PathBuf};

/// Every script, by file name, as the repository holds it.
pub const SCRIPTS: [(&str, &str); 9] = [
    ("common.js", include_str!("../../../node/common.js")),
    (
        "main_thread.js",
        include_str!("../../../node/main_thread.js"),
    ),
    (
        "worker_threads.js",
        include_str!("../../../node/worker_threads.js"),
    ),
    (
        "worker_threads_worker.js",
        include_str!("../../../node/worker_threads_worker.js"),
    ),
    (
        "child_process.js",
        include_str!("../../../node/child_process.js"),
    ),
    (
        "child_process_child.js",
        include_str!("../../../node/child_process_child.js"),
    ),
    ("cluster.js", include_str!("../../../node/cluster.js")),
    ("detect.js", include_str!("../../../node/detect.js")),
    ("bench.js", include_str!("../../../node/bench.js")),
];

/// The text of script `name`, if there is one by that name.
pub fn source(name: &str) -> Option<&'static str> {
    SCRIPTS
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

/// Write the scripts into a folder of their own under `base` (named after
/// their contents, so servers of different versions never share one) and
/// return it. Each file is written to a temporary name and renamed, so a
/// second server starting at the same moment never sees half a file.
pub fn install(base: &Path) -> io::Result<PathBuf> {
    let dir = base.join(format!("spawnlab-node-{:016x}", fingerprint()));
    std::fs::create_dir_all(&dir)?;
    for (name, text) in SCRIPTS {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|on_disk| on_disk == text) {
            continue;
        }
        let partial = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(dir)
}

/// FNV-1a over every script's name and text.
fn fingerprint() -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (name, text) in SCRIPTS {
        for byte in name.bytes().chain(text.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_written_once_and_whole() {
        let base =
            std::env::temp_dir().join(format!("spawnlab-scripts-test-{}", std::process::id()));
        let dir = install(&base).unwrap();
        let again = install(&base).unwrap();
        assert_eq!(dir, again);
        for (name, text) in SCRIPTS {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), text);
        }
        assert_eq!(source("cluster.js"), Some(SCRIPTS[6].1));
        assert_eq!(source("../etc/passwd"), None);
        std::fs::remove_dir_all(base).unwrap();
    }
}
