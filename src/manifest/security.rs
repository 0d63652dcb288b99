//! `[security]`: the manifest's shape of what the process may do beyond its namespaces
//! (meaning is checked by `validate::security`).

use serde::Deserialize;

use super::Sp;

/// Capabilities, no_new_privs, seccomp, masked and read-only paths. Every key defaults to the
/// secure choice; each opt-out is a key of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `"default"`: the secure defaults below. `"unconfined"`: all of them off (capabilities
    /// untouched, no no_new_privileges, no seccomp filter, nothing masked or read-only); a key
    /// set beside it still applies.
    #[serde(default)]
    pub profile: Option<Sp<SecurityProfile>>,
    /// `"default"` (podman's 11), a list (`["CHOWN", "CAP_NET_BIND_SERVICE"]`, `"ALL"` for
    /// every one), or `{ add = [...], drop = [...] }` changes to the default.
    #[serde(default)]
    pub capabilities: Option<Sp<Capabilities>>,
    /// Set no_new_privs: setuid bits and file capabilities grant nothing (default `true`).
    #[serde(default)]
    pub no_new_privileges: Option<Sp<bool>>,
    /// `"default"` (Docker's default profile's effect), `"unconfined"`, or the path of a
    /// Docker or OCI seccomp profile (JSON), relative to the manifest's folder.
    #[serde(default)]
    pub seccomp: Option<Sp<String>>,
    /// Log the calls the filter denies to the kernel log (dmesg, audit): for debugging a
    /// blocked call (default `false`).
    #[serde(default)]
    pub seccomp_log: Option<Sp<bool>>,
    /// `"default"` (Docker's and podman's list), or the paths to hide.
    #[serde(default)]
    pub masked_paths: Option<Sp<WordOrList>>,
    /// `"default"` (Docker's and podman's list), or the paths to make read-only.
    #[serde(default)]
    pub readonly_paths: Option<Sp<WordOrList>>,
    /// `"default"` (runc's allow-list: null, zero, full, random, urandom, tty, ptmx, ptys,
    /// tun), `"unconfined"` (no device control), or rules added after the default list, in
    /// cgroup v1's form: `["allow c 10:229 rwm", "deny c 10:200 rwm"]`.
    #[serde(default)]
    pub devices: Option<Sp<WordOrList>>,
}

/// `[security] profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SecurityProfile {
    /// The secure defaults.
    Default,
    /// Every default off.
    Unconfined,
}

/// `[security] capabilities`: a word, a list, or changes to the default.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum Capabilities {
    /// `"default"`.
    Word(String),
    /// Exactly these capabilities.
    List(Vec<Sp<String>>),
    /// The default set with these added and dropped.
    Changes(CapChanges),
}

/// `capabilities = { add = [...], drop = [...] }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CapChanges {
    /// Capabilities added to the default set (`"ALL"`: every one).
    #[serde(default)]
    pub add: Vec<Sp<String>>,
    /// Capabilities dropped from it (`"ALL"`: every one).
    #[serde(default)]
    pub drop: Vec<Sp<String>>,
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Capabilities;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"default\", a list of capabilities, or a table with add and drop")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Capabilities, E> {
                Ok(Capabilities::Word(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Capabilities, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Capabilities::List)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Capabilities, A::Error> {
                CapChanges::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Capabilities::Changes)
            }
        }
        d.deserialize_any(V)
    }
}

/// A word (`"default"`, `"unconfined"`), or a list of strings (paths, device rules).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "schema-gen", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema-gen", schemars(untagged))]
pub enum WordOrList {
    /// `"default"`, `"unconfined"`.
    Word(String),
    /// The strings.
    List(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for WordOrList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = WordOrList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a word like \"default\", or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WordOrList, E> {
                Ok(WordOrList::Word(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<WordOrList, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(WordOrList::List)
            }
        }
        d.deserialize_any(V)
    }
}
