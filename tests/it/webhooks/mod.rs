//! Job webhooks end to end: endpoints registered through the API, events written when
//! jobs end, delivered by real workers to a receiver in the test, and every delivery
//! verified by the `standardwebhooks` package.

mod deliveries;
mod endpoints;
mod receiver;
