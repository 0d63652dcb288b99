//! The image config (OCI image spec "config", Docker's image JSON): the defaults an image gives
//! a container that its manifest does not set, and the layers' diff_ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Digest;

/// The parts of an image config the launcher uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `amd64`, `arm64`.
    #[serde(default)]
    pub architecture: String,
    /// `linux`.
    #[serde(default)]
    pub os: String,
    /// `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The process defaults.
    #[serde(default)]
    pub config: Option<ProcessDefaults>,
    /// The layers' uncompressed digests, bottom first.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// One per layer, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// `config` of an image config: what runs, and how, unless the manifest says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessDefaults {
    /// `user`, `uid`, `user:group` or `uid:gid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `NAME=value` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// The command's first words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments (or the command, without an entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `80/tcp` → `{}`: recorded for the network settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// The stop signal (`SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

impl ImageConfig {
    /// Parse a config blob.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an image config: {e}"))
    }

    /// The process defaults (empty when the image sets none).
    pub fn defaults(&self) -> ProcessDefaults {
        self.config.clone().unwrap_or_default()
    }

    /// The command the image runs by default: entrypoint then cmd (Docker's rule).
    pub fn command(&self) -> Vec<String> {
        let d = self.defaults();
        let mut argv = d.entrypoint.unwrap_or_default();
        argv.extend(d.cmd.unwrap_or_default());
        argv
    }

    /// The environment as (name, value) pairs, in the image's order; lines without `=` are
    /// skipped.
    pub fn env(&self) -> Vec<(String, String)> {
        self.defaults()
            .env
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    /// The exposed ports as written (`80/tcp`).
    pub fn exposed_ports(&self) -> Vec<String> {
        self.defaults()
            .exposed_ports
            .map(|p| p.into_keys().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_config_gives_its_defaults() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"User":"1000:1000",
            "Env":["PATH=/usr/bin:/bin","EMPTY=","junk"],"Entrypoint":["/bin/sh","-c"],
            "Cmd":["echo hi"],"WorkingDir":"/srv","ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"x"}]}"#;
        let c = ImageConfig::parse(json).unwrap();
        assert_eq!(c.command(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env().len(), 2);
        assert_eq!(c.env()[1], ("EMPTY".to_owned(), String::new()));
        assert_eq!(c.defaults().working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.defaults().user.as_deref(), Some("1000:1000"));
        assert_eq!(c.exposed_ports(), ["80/tcp"]);
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert!(ImageConfig::parse(b"{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}").is_err());
    }
}
