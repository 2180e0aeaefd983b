//! Placeholder with the agreed API; the full decoder replaces this file.
#![allow(dead_code, unused_variables)]

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcfError {
    #[error("the TC string is empty")]
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    ids: Vec<u16>,
}

impl IdSet {
    pub fn contains(&self, id: u16) -> bool {
        self.ids.contains(&id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestrictionType {
    NotAllowed,
    RequireConsent,
    RequireLegitimateInterest,
    Undefined,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcString {
    pub tcf_policy_version: u8,
    pub purpose_one_treatment: bool,
    pub purposes_consent: IdSet,
}

impl TcString {
    pub fn purpose_consent(&self, purpose: u8) -> bool {
        self.purposes_consent.contains(u16::from(purpose))
    }
    pub fn vendor_consent(&self, vendor: u16) -> bool {
        false
    }
    pub fn vendor_disclosed(&self, vendor: u16) -> Option<bool> {
        None
    }
    pub fn restriction(&self, purpose: u8, vendor: u16) -> Option<RestrictionType> {
        None
    }
}

pub fn decode(tc: &str) -> Result<TcString, TcfError> {
    Err(TcfError::Empty)
}
