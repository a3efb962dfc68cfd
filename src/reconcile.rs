//! `outpost reconcile` and `outpost audit-verify`: the hub's on-demand reconciliation and
//! audit-trail verifier (the code lives in `region_hub::reconcile::cli`; see
//! `docs/reconciliation.md`).

pub use region_hub::reconcile::cli::{AuditVerifyArgs, ReconcileArgs, audit_verify, reconcile};
