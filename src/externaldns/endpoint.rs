//! The JSON of ExternalDNS's webhook provider protocol, as its Go types serialize
//! (`endpoint.Endpoint`, `plan.Changes`, `endpoint.DomainFilter`). Go decodes field names
//! case-insensitively, and `plan.Changes` had no JSON tags before 2025 (`Create`,
//! `UpdateOld`, ...): both spellings are read, the current one is written.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One record set as ExternalDNS sees it. Kept exactly as received, so that what
/// `GET /records` returns is what ExternalDNS wrote (its ownership TXT records included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Owner name, without the trailing dot.
    #[serde(rename = "dnsName", alias = "DNSName", default, skip_serializing_if = "String::is_empty")]
    pub dns_name: String,
    /// Record data in text form, one per record.
    #[serde(alias = "Targets", default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `A`, `AAAA`, `CNAME`, `TXT`, `SRV`, `MX` or `NS`.
    #[serde(rename = "recordType", alias = "RecordType", default, skip_serializing_if = "String::is_empty")]
    pub record_type: String,
    /// Tells record sets with the same name and type apart (routing policies).
    #[serde(rename = "setIdentifier", alias = "SetIdentifier", default, skip_serializing_if = "String::is_empty")]
    pub set_identifier: String,
    /// TTL in seconds; 0: not set (the zone's `default_ttl`).
    #[serde(rename = "recordTTL", alias = "RecordTTL", default, skip_serializing_if = "is_zero")]
    pub record_ttl: i64,
    /// ExternalDNS's labels (owner, resource), kept and returned.
    #[serde(
        alias = "Labels",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Provider-specific properties, from annotations.
    #[serde(
        rename = "providerSpecific",
        alias = "ProviderSpecific",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_specific: Vec<Property>,
}

/// One provider-specific property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Its name, e.g. `webhook/weight`.
    #[serde(alias = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its value.
    #[serde(alias = "Value", default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

impl Endpoint {
    /// The value of a provider-specific property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.provider_specific.iter().find(|p| p.name == name).map(|p| p.value.as_str())
    }
}

/// What `POST /records` carries: the plan's changes. Applied in one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Changes {
    /// New record sets.
    #[serde(alias = "Create", default, deserialize_with = "null_as_default")]
    pub create: Vec<Endpoint>,
    /// Record sets as they are before an update.
    #[serde(rename = "updateOld", alias = "UpdateOld", default, deserialize_with = "null_as_default")]
    pub update_old: Vec<Endpoint>,
    /// Record sets as they are after an update.
    #[serde(rename = "updateNew", alias = "UpdateNew", default, deserialize_with = "null_as_default")]
    pub update_new: Vec<Endpoint>,
    /// Record sets to remove.
    #[serde(alias = "Delete", default, deserialize_with = "null_as_default")]
    pub delete: Vec<Endpoint>,
}

impl Changes {
    /// Every endpoint with its section and index, in the order they are applied: removals
    /// first (`delete`, `updateOld`), then what is put in (`create`, `updateNew`).
    pub fn sections(&self) -> [(&'static str, &[Endpoint]); 4] {
        [
            ("delete", &self.delete),
            ("updateOld", &self.update_old),
            ("create", &self.create),
            ("updateNew", &self.update_new),
        ]
    }

    /// Number of endpoints in all sections.
    pub fn len(&self) -> usize {
        self.create.len() + self.update_old.len() + self.update_new.len() + self.delete.len()
    }

    /// No endpoint at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The domain filter `GET /` answers with (`endpoint.DomainFilter`'s list form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainFilter {
    /// Domains ExternalDNS may manage (our zones it may write).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Domains inside them it may not (zones served here from other sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Go writes an empty slice or map as `null`.
fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both spellings of the changes are read; nulls are empty; unknown fields ignored.
    #[test]
    fn changes_read_in_both_spellings() {
        let now: Changes = serde_json::from_str(
            r#"{"create":[{"dnsName":"a.x","targets":["192.0.2.1"],"recordType":"A","recordTTL":60,
               "labels":{"owner":"k"},"providerSpecific":[{"name":"webhook/weight","value":"5"}]}],
               "updateOld":null,"delete":[]}"#,
        )
        .unwrap();
        let old: Changes = serde_json::from_str(
            r#"{"Create":[{"DNSName":"a.x","Targets":["192.0.2.1"],"RecordType":"A","RecordTTL":60,
               "Labels":{"owner":"k"},"ProviderSpecific":[{"Name":"webhook/weight","Value":"5"}]}],
               "UpdateOld":null,"UpdateNew":null,"Delete":null,"Extra":1}"#,
        )
        .unwrap();
        assert_eq!(now, old);
        assert_eq!(now.create[0].property("webhook/weight"), Some("5"));
        // Written back as ExternalDNS writes it: empty fields left out.
        let back = serde_json::to_value(&now.create[0]).unwrap();
        assert_eq!(back["dnsName"], "a.x");
        assert!(back.get("setIdentifier").is_none());
    }
}
