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
/// their contents and this user, so servers of different versions never
/// share one) and return it. Each file is written to a temporary name and
/// renamed, so a second server starting at the same moment never sees half
/// a file.
///
/// `node` runs what is in that folder, so it must be this user's alone: it
/// is created with mode 0700, and one found already there that is a link,
/// another user's, or open to others is refused rather than trusted.
pub fn install(base: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = nix::unistd::geteuid().as_raw();
    let dir = base.join(format!("spawnlab-node-{uid}-{:016x}", fingerprint()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => other?,
    }
    let found = std::fs::symlink_metadata(&dir)?;
    if !found.is_dir() || found.uid() != uid || found.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder of this user's alone (a link, another user's, or open to \
                 others), so the Node.js scripts are not written there",
                dir.display()
            ),
        ));
    }
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
        std::fs::create_dir_all(&base).unwrap();
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

    #[test]
    fn a_folder_others_can_write_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let base =
            std::env::temp_dir().join(format!("spawnlab-scripts-open-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let dir = install(&base).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700,
            "created for this user alone"
        );
        // As if someone had made it, or opened it, before this server.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = install(&base).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            refused
                .to_string()
                .contains("not a folder of this user's alone"),
            "{refused}"
        );
        std::fs::remove_dir_all(base).unwrap();
    }
}
