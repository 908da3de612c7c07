//! Helpers for the integration tests: a temporary workspace holding a copy of the repository's
//! sample (issues and layouts), and the real `bulletin` binary run in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder with copies of `issues/` and `layouts/` from the repository.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn with_sample() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&repo().join("issues"), &dir.path().join("issues"));
        copy_dir(
            &repo().join("layouts/efus"),
            &dir.path().join("layouts/efus"),
        );
        Workspace { dir }
    }

    /// The sample with its images published (`images_url`), as a send needs, and the
    /// repository's `bulletin.toml` followed by `profile` (a `[profiles.NAME]` table).
    pub fn for_sending(profile: &str) -> Self {
        let ws = Self::with_sample();
        let sample = ws.read("issues/2020-06.json").replacen(
            "\"language\": \"en\",",
            "\"language\": \"en\",\n  \"images_url\": \"https://example.org/newsletter/2020-06/\",",
            1,
        );
        ws.write("issues/2020-06.json", &sample);
        let config = std::fs::read_to_string(repo().join("bulletin.toml")).unwrap();
        ws.write("bulletin.toml", &format!("{config}\n{profile}"));
        ws
    }

    pub fn empty() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel))
            .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    /// Runs `bulletin ARGS` in the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs `bulletin ARGS` in the workspace with these environment variables set.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_bulletin"))
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bulletin");
        Run(output)
    }
}

/// The outcome of one run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "expected success; stderr:\n{}",
            self.stderr()
        );
        self.stdout()
    }
    /// Asserts exit code 1 (bad input) and returns stderr.
    pub fn bad_input(&self) -> String {
        assert_eq!(
            self.code(),
            1,
            "expected exit 1; stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "panic on bad input:\n{}",
            self.stderr()
        );
        self.stderr()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Text with all runs of white space made one space: wrapped lines read as one.
pub fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A minimal valid issue with the given sections (a JSON array's inside).
pub fn issue_with(sections: &str) -> String {
    format!(
        r#"{{
  "title": "Test issue",
  "date": "2020-06-03",
  "sections": [
{sections}
  ]
}}"#
    )
}
