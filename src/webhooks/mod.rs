//! Webhooks: [`signature`], the Standard Webhooks scheme, shared by whatever verifies or
//! signs a webhook.

pub mod signature;
