//! `audit-log`: the auditor's side of audit_log (API section 7).

fn main() {}
