//! The real binary as a child process, for what only a process shows: exit
//! codes, signals, crash recovery, what reaches its logs.

use super::ADMIN;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A new, empty directory under the system's temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "quota-alert-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every file SQLite keeps for the database at `db` (main file, WAL, shared
/// memory), concatenated: what a search for secrets on disk must look in.
pub fn database_bytes(db: &Path) -> Vec<u8> {
    let name = db.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let dir = db.parent().expect("a database in a directory");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("database directory")
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(name) {
            bytes.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    bytes
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// As a value in [`ServerProcess::spawn`]'s `env`: the variable is removed
/// instead (e.g. to start without the test admin key).
pub const UNSET: &str = "\0unset";

/// The server binary, killed and reaped when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts the binary on a free port with its SQLite file at `db` and
    /// `env` on top of the test admin key; waits until `/healthz` answers.
    /// Its output goes to `log` (stdout and stderr both) or nowhere.
    // The child is owned by `ServerProcess`, whose drop kills and reaps it.
    #[allow(clippy::zombie_processes)]
    pub async fn spawn(db: &Path, env: &[(&str, &str)], log: Option<&Path>) -> Self {
        let port = free_port();
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("log file");
                let copy = file.try_clone().expect("log file");
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_quota-alert"));
        command
            .env("QUOTA_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("QUOTA_ADMIN_RESET_KEY", ADMIN)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_OUTPUT_NAME", "quota-alert")
            .env("RUST_LOG", "warn");
        for (name, value) in env {
            if *value == UNSET {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let child = command
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn server");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not start");
    }
}
