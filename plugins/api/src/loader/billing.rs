//! The raw calls of a billing plugin.

use std::fmt;
use std::sync::Arc;

use super::{Instance, PluginInfo, PluginLibrary};
use crate::abi::{
    ArchiveEventRepr, BillingFunctions, FreeReportFn, OwnedBuf, PluginKind, RecordFn, ReportFn,
    ReportOut, StrRef, event_kind, status,
};
use crate::billing::{
    ArchiveEvent, ArchiveEventKind, BillingMonth, BillingReport, BusinessReport, Recorded,
};
use crate::error::PluginError;

/// The most rows a report may have (businesses).
const MAX_REPORT_ROWS: usize = 1_000_000;
/// The longest domain or currency accepted from a plugin, in bytes.
const MAX_NAME_BYTES: usize = 1024;

/// An initialized billing plugin, called synchronously (the calls block: see
/// [`crate::PluginBillingSink`] for the async wrapper).
pub struct BillingPluginHandle {
    record: RecordFn,
    report: ReportFn,
    free_report: FreeReportFn,
    instance: Instance,
}

impl fmt::Debug for BillingPluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingPluginHandle")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl BillingPluginHandle {
    /// Checks the billing function table of `library` (loaded as
    /// [`PluginKind::Billing`]), then calls the plugin's `init` with `settings`.
    pub fn new(
        library: Arc<PluginLibrary>,
        settings: &str,
    ) -> Result<BillingPluginHandle, PluginError> {
        if library.info().kind != PluginKind::Billing {
            return Err(PluginError::KindMismatch {
                path: library.info().path.clone(),
                plugin: library.label().to_owned(),
                expected: PluginKind::Billing.name().to_owned(),
                found: library.info().kind.name().to_owned(),
            });
        }
        // SAFETY: `load` checked that the plugin declares the billing kind
        // for this ABI and layout, so `functions` points to its static
        // `BillingFunctions`, alive while the library is loaded.
        let table = unsafe { library.functions.cast::<BillingFunctions>().as_ref() };
        let missing = |function| PluginError::MissingFunction {
            path: library.info().path.clone(),
            plugin: library.label().to_owned(),
            function,
        };
        let record = table.record.ok_or_else(|| missing("record"))?;
        let report = table.report.ok_or_else(|| missing("report"))?;
        let free_report = table.free_report.ok_or_else(|| missing("free_report"))?;
        let instance = Instance::new(library, settings)?;
        Ok(BillingPluginHandle {
            record,
            report,
            free_report,
            instance,
        })
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        self.instance.library().info()
    }

    /// Records one event (blocks until it is durable).
    pub fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginError> {
        let library = self.instance.library();
        event.validate().map_err(|reason| {
            library.invalid("record", format!("the host built a bad event: {reason}"))
        })?;
        let (kind, size, mailbox, reason) = match &event.kind {
            ArchiveEventKind::Enabled => (event_kind::ENABLED, 0, StrRef::ABSENT, StrRef::ABSENT),
            ArchiveEventKind::Disabled => (event_kind::DISABLED, 0, StrRef::ABSENT, StrRef::ABSENT),
            ArchiveEventKind::MessageArchived { size } => (
                event_kind::MESSAGE_ARCHIVED,
                *size,
                StrRef::ABSENT,
                StrRef::ABSENT,
            ),
            ArchiveEventKind::OverrideUsed {
                mailbox,
                reason,
                removed_bytes,
            } => (
                event_kind::OVERRIDE_USED,
                *removed_bytes,
                StrRef::new(mailbox),
                StrRef::new(reason),
            ),
        };
        let repr = ArchiveEventRepr {
            event_id: StrRef::new(&event.id),
            kind,
            at_unix: event.at_unix,
            domain: StrRef::new(&event.domain),
            user: StrRef::new(&event.user),
            size,
            mailbox,
            reason,
        };
        let mut error = OwnedBuf::NONE;
        // SAFETY: the function comes from the checked table; the instance
        // is alive (borrowed by `self`); the event and its strings are
        // borrowed for the call; `error` is a slot owned here.
        let code = unsafe { (self.record)(self.instance.as_ptr(), &repr, &mut error) };
        match code {
            status::OK | status::DUPLICATE => {
                library.take_buffer(error, usize::MAX, "record")?;
                Ok(if code == status::OK {
                    Recorded::New
                } else {
                    Recorded::Duplicate
                })
            }
            other => Err(library.failure("record", other, error)),
        }
    }

    /// The report of a month (blocks).
    pub fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginError> {
        let library = self.instance.library();
        let mut out = ReportOut::NONE;
        let mut error = OwnedBuf::NONE;
        // SAFETY: as in `record`: checked function, live instance, slots
        // owned here.
        let code = unsafe {
            (self.report)(
                self.instance.as_ptr(),
                month.year(),
                u32::from(month.month()),
                &mut out,
                &mut error,
            )
        };
        if code != status::OK {
            let err = library.failure("report", code, error);
            self.free(out);
            return Err(err);
        }
        let copied = self.copy_report(month, &out);
        self.free(out);
        library.take_buffer(error, usize::MAX, "report")?;
        copied
    }

    fn copy_report(
        &self,
        month: BillingMonth,
        out: &ReportOut,
    ) -> Result<BillingReport, PluginError> {
        let library = self.instance.library();
        let invalid = |reason: &str| library.invalid("report", reason.to_owned());
        let text = |buf: &OwnedBuf| -> Result<String, PluginError> {
            if buf.len > MAX_NAME_BYTES {
                return Err(invalid("an overlong string"));
            }
            // SAFETY: a buffer inside a report the plugin handed out holds
            // `len` readable bytes until the report is freed (after this).
            let bytes = unsafe { buf.bytes() }.ok_or_else(|| invalid("a missing string"))?;
            String::from_utf8(bytes.to_vec()).map_err(|_| invalid("a string that is not UTF-8"))
        };
        let currency = text(&out.currency)?;
        if out.len > MAX_REPORT_ROWS {
            return Err(invalid("too many rows"));
        }
        let rows = if out.rows.is_null() {
            if out.len != 0 {
                return Err(invalid("rows missing"));
            }
            &[][..]
        } else {
            // SAFETY: non-null rows of a report the plugin handed out: `len`
            // initialized `ReportRowRepr`s, valid until the report is freed.
            unsafe { std::slice::from_raw_parts(out.rows, out.len) }
        };
        let mut businesses = Vec::with_capacity(rows.len());
        for row in rows {
            businesses.push(BusinessReport {
                domain: text(&row.domain)?,
                archived_users: row.archived_users,
                user_days: row.user_days,
                messages: row.messages,
                bytes_archived: row.bytes_archived,
                gb_month_millionths: row.gb_month_millionths,
                overrides_used: row.overrides_used,
                charge_cents: row.charge_cents,
            });
        }
        Ok(BillingReport {
            month,
            currency,
            businesses,
        })
    }

    fn free(&self, out: ReportOut) {
        if out.currency.is_none() && out.rows.is_null() {
            return;
        }
        // SAFETY: a report the plugin handed out, given back exactly once.
        unsafe { (self.free_report)(out) };
    }
}
