//! The admin key: set by the operator, or generated at start and kept in the
//! data directory so a restart keeps it (and the admin's sessions).

use super::{Config, ConfigError, Secret};
use std::path::{Path, PathBuf};

pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// The file, in the data directory (next to the SQLite file), holding the
/// generated admin key when `QUOTA_ADMIN_RESET_KEY` is not set.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// Where the admin key came from: set by the operator, generated at start
/// (until [`Config::keep_generated_admin_key`] keeps it), or read from the
/// file in the data directory where a generated key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminKeySource {
    Environment,
    Generated,
    /// Generated on an earlier (or this) start and kept in this file (mode
    /// 0600), so a restart keeps the admin key and its sessions.
    File(PathBuf),
}

/// `QUOTA_ADMIN_RESET_KEY`, or a freshly generated key.
pub(super) fn admin_key(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(Secret, AdminKeySource), ConfigError> {
    let (admin_key, admin_key_source) = match env("QUOTA_ADMIN_RESET_KEY") {
        Some(key) if key.chars().count() < MIN_ADMIN_KEY_LEN => {
            return Err(ConfigError::AdminKeyTooShort(key.chars().count()))
        }
        Some(key) => (key, AdminKeySource::Environment),
        None => (
            crate::auth::generate_secret("qa_admin_"),
            AdminKeySource::Generated,
        ),
    };
    Ok((Secret::new(admin_key), admin_key_source))
}

impl Config {
    /// When no admin key was set, keeps the generated one: the key already
    /// in [`ADMIN_KEY_FILE`] in the data directory (the SQLite file's) is
    /// used if there is one, else the generated key is written there (mode
    /// 0600 from its creation) and used from then on. Under Redis a
    /// generated key is refused: instances must agree on one admin key.
    pub fn keep_generated_admin_key(&mut self) -> Result<(), ConfigError> {
        if self.admin_key_source != AdminKeySource::Generated {
            return Ok(());
        }
        if self.uses_redis() {
            return Err(ConfigError::GeneratedAdminKeyWithRedis);
        }
        let db = crate::store::path_from_url(&self.database_url).map_err(|e| {
            ConfigError::AdminKeyFile {
                path: PathBuf::from(ADMIN_KEY_FILE),
                problem: e.to_string(),
            }
        })?;
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = dir.join(ADMIN_KEY_FILE);
        let key =
            admin_key_file::read_or_create(&path, self.admin_key.expose()).map_err(|problem| {
                ConfigError::AdminKeyFile {
                    path: path.clone(),
                    problem,
                }
            })?;
        self.admin_key = Secret::new(key);
        self.admin_key_source = AdminKeySource::File(path);
        Ok(())
    }
}

/// The generated admin key's file: never readable by anyone but the owner,
/// not even for a moment, and never seen half-written.
mod admin_key_file {
    use super::MIN_ADMIN_KEY_LEN;
    use std::io::Write;
    use std::path::Path;

    /// The key in `path`, or `fresh` once it is written there.
    pub(super) fn read_or_create(path: &Path, fresh: &str) -> Result<String, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the directory: {e}"))?;
        }
        if path.exists() {
            return read(path);
        }
        // Written whole to a private temporary file, then linked into place:
        // a link never replaces an existing file, so of two processes
        // starting at once one key wins and both use it, and nobody reads a
        // file that is still being written.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut file = create_private(&tmp)?;
            file.write_all(format!("{fresh}\n").as_bytes())?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(fresh.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
            Err(e) => Err(format!("cannot write it: {e}")),
        }
    }

    #[cfg(unix)]
    fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    #[cfg(not(unix))]
    fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    }

    fn read(path: &Path) -> Result<String, String> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.is_file() {
            return Err("it is not a regular file".into());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "it is open to other users (mode {mode:o}); `chmod 600` it, or delete it \
                     to generate a new key"
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        let key = text.trim();
        if key.chars().count() < MIN_ADMIN_KEY_LEN || key.contains(char::is_whitespace) {
            return Err(format!(
                "it does not hold an admin key (one line of at least {MIN_ADMIN_KEY_LEN} \
                 characters); delete it to generate a new one"
            ));
        }
        Ok(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;

    #[test]
    fn a_short_admin_key_is_refused_and_a_missing_one_generated() {
        let err = load(None, &[("QUOTA_ADMIN_RESET_KEY", "short")]).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let config = load(None, &[]).unwrap();
        assert_eq!(config.admin_key_source, AdminKeySource::Generated);
        assert!(config.admin_key.expose().len() >= 32);
        assert_ne!(config.admin_key, load(None, &[]).unwrap().admin_key);
        assert!(!format!("{config:?}").contains(config.admin_key.expose()));
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "quota-alert-config-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_generated_admin_key_is_kept_in_the_data_directory_and_reused() {
        let dir = temp_dir("admin-key");
        let url = format!("sqlite://{}/quota.db", dir.display());
        let mut first = load(None, &[("QUOTA_DATABASE_URL", &url)]).unwrap();
        let generated = first.admin_key.clone();
        first.keep_generated_admin_key().unwrap();
        let path = dir.join(ADMIN_KEY_FILE);
        assert_eq!(first.admin_key_source, AdminKeySource::File(path.clone()));
        assert_eq!(
            first.admin_key, generated,
            "the generated key is the one kept"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut second = load(None, &[("QUOTA_DATABASE_URL", &url)]).unwrap();
        assert_ne!(second.admin_key, generated);
        second.keep_generated_admin_key().unwrap();
        assert_eq!(second.admin_key, generated, "reused on the next start");

        // A set key is used as is, and the file is left alone.
        let mut set = load(
            None,
            &[
                ("QUOTA_DATABASE_URL", &url),
                ("QUOTA_ADMIN_RESET_KEY", "an-operator-chosen-key"),
            ],
        )
        .unwrap();
        set.keep_generated_admin_key().unwrap();
        assert_eq!(set.admin_key.expose(), "an-operator-chosen-key");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load(None, &[("QUOTA_DATABASE_URL", &url)])
                .unwrap()
                .keep_generated_admin_key()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("chmod 600") && err.contains("admin.key"),
                "{err}"
            );
            assert!(!err.contains(generated.expose()), "{err}");
        }
        std::fs::write(&path, "short\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = load(None, &[("QUOTA_DATABASE_URL", &url)])
            .unwrap()
            .keep_generated_admin_key()
            .unwrap_err();
        assert!(
            err.to_string().contains("does not hold an admin key"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redis_refuses_a_generated_admin_key() {
        let mut config = load(None, &[("QUOTA_DATABASE_URL", "redis://127.0.0.1:6379/")]).unwrap();
        assert!(config.uses_redis());
        let err = config.keep_generated_admin_key().unwrap_err().to_string();
        assert!(err.contains("QUOTA_ADMIN_RESET_KEY must be set"), "{err}");
        let mut set = load(
            None,
            &[
                ("QUOTA_DATABASE_URL", "rediss://cache:6380/"),
                ("QUOTA_ADMIN_RESET_KEY", "an-operator-chosen-key"),
            ],
        )
        .unwrap();
        set.keep_generated_admin_key().unwrap();
    }
}
