//! SEARCH and UID SEARCH: every RFC 3501 key, CHARSET, nesting, sequence
//! sets and `$` (RFC 5182), ESEARCH RETURN options (RFC 4731) and MODSEQ
//! (RFC 7162).

use mailroom_core::ModSeq;

use crate::command::{Command, PartialRange, SearchKey, SearchReturn};
use crate::extension::objectid;

use super::primitives::{Cursor, MAX_LIST_ITEMS, PResult, err, utf8};

/// `SEARCH [SP "RETURN" SP "(" [opts] ")"] [SP "CHARSET" SP astring] 1*(SP search-key)`
pub(super) fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let mut return_options = None;
    if c.eat_word("RETURN") {
        c.sp()?;
        return_options = Some(self::return_options(c)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat_word("CHARSET") {
        c.sp()?;
        charset = Some(utf8(c.astring()?)?.to_ascii_uppercase());
        c.sp()?;
    }
    let criteria = criteria(c)?;
    Ok(Command::Search {
        uid,
        charset,
        return_options,
        criteria,
    })
}

/// `"(" [return-opt *(SP return-opt)] ")"` of ESEARCH (RFC 4731) and
/// ESORT (RFC 5267): duplicates dropped, `()` meaning `(ALL)`.
pub(super) fn return_options(c: &mut Cursor<'_>) -> PResult<Vec<SearchReturn>> {
    c.enter()?;
    let mut opts = c.list(true, |c| {
        Ok(match c.keyword()?.as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" => SearchReturn::Save,
            "UPDATE" => SearchReturn::Update,
            "CONTEXT" => SearchReturn::Context,
            "PARTIAL" => {
                c.sp()?;
                SearchReturn::Partial(partial_range(c)?)
            }
            _ => return err("unknown SEARCH return option"),
        })
    })?;
    c.leave();
    // RFC 5267 §4.4: one PARTIAL, one ALL, or neither.
    let windows = opts
        .iter()
        .filter(|o| matches!(o, SearchReturn::All | SearchReturn::Partial(_)))
        .count();
    if windows > 1 {
        return err("at most one of PARTIAL and ALL");
    }
    if opts.is_empty() {
        // RFC 4731 §3.1: RETURN () is RETURN (ALL).
        opts.push(SearchReturn::All);
    }
    let mut unique = Vec::with_capacity(opts.len());
    for o in opts {
        if !unique.contains(&o) {
            unique.push(o);
        }
    }
    Ok(unique)
}

/// `partial-range = partial-range-first / partial-range-last` (RFC 9394
/// §3.1; RFC 5267's is the first form): `m:n` or `-m:-n`, nonzero, no
/// `*`, either order.
fn partial_range(c: &mut Cursor<'_>) -> PResult<PartialRange> {
    let from_end = c.eat(b'-');
    let a = c.nz_number()?;
    if !c.eat(b':') {
        return err("expected a PARTIAL range m:n");
    }
    if c.eat(b'-') != from_end {
        return err("PARTIAL range ends must have the same sign");
    }
    let b = c.nz_number()?;
    Ok(PartialRange {
        from_end,
        lo: a.min(b),
        hi: a.max(b),
    })
}

/// `CANCELUPDATE 1*(SP quoted)` (RFC 5267 §4.3.5).
pub(super) fn cancel_update(c: &mut Cursor<'_>) -> PResult<Command> {
    let mut tags = Vec::new();
    while c.eat(b' ') {
        if tags.len() >= MAX_LIST_ITEMS {
            return err("too many tags");
        }
        tags.push(utf8(c.quoted()?.into())?);
    }
    if tags.is_empty() {
        return err("CANCELUPDATE needs a tag");
    }
    Ok(Command::CancelUpdate(tags))
}

/// `search-key *(SP search-key)`, the top-level keys of SEARCH, SORT and
/// THREAD: one key, or their implicit AND.
pub(super) fn criteria(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut keys = vec![search_key(c)?];
    while c.eat(b' ') {
        if keys.len() >= MAX_LIST_ITEMS {
            return err("too many search keys");
        }
        keys.push(search_key(c)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

/// One `search-key`.
pub(super) fn search_key(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    match c.peek() {
        Some(b'(') => {
            c.enter()?;
            let keys = c.list(false, search_key)?;
            c.leave();
            return Ok(SearchKey::And(keys));
        }
        Some(b'$') => {
            c.eat(b'$');
            return Ok(SearchKey::SavedResult);
        }
        Some(b) if b.is_ascii_digit() || b == b'*' => return Ok(SearchKey::SeqSet(c.seq_set()?)),
        None => return err("missing search key"),
        _ => {}
    }
    let name = c.keyword()?;
    let arg_string = |c: &mut Cursor<'_>| -> PResult<String> {
        c.sp()?;
        c.astring_lossy()
    };
    let arg_date = |c: &mut Cursor<'_>| {
        c.sp()?;
        c.date()
    };
    Ok(match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "RECENT" => SearchKey::Recent,
        "SEEN" => SearchKey::Seen,
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNSEEN" => SearchKey::Unseen,
        "BCC" => SearchKey::Bcc(arg_string(c)?),
        "BODY" => SearchKey::Body(arg_string(c)?),
        "CC" => SearchKey::Cc(arg_string(c)?),
        "FROM" => SearchKey::From(arg_string(c)?),
        "SUBJECT" => SearchKey::Subject(arg_string(c)?),
        "TEXT" => SearchKey::Text(arg_string(c)?),
        "TO" => SearchKey::To(arg_string(c)?),
        "BEFORE" => SearchKey::Before(arg_date(c)?),
        "ON" => SearchKey::On(arg_date(c)?),
        "SINCE" => SearchKey::Since(arg_date(c)?),
        "SENTBEFORE" => SearchKey::SentBefore(arg_date(c)?),
        "SENTON" => SearchKey::SentOn(arg_date(c)?),
        "SENTSINCE" => SearchKey::SentSince(arg_date(c)?),
        "SAVEDBEFORE" => SearchKey::SavedBefore(arg_date(c)?),
        "SAVEDON" => SearchKey::SavedOn(arg_date(c)?),
        "SAVEDSINCE" => SearchKey::SavedSince(arg_date(c)?),
        "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
        "EMAILID" | "THREADID" => {
            // RFC 8474: `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
            c.sp()?;
            let id = c.token(objectid::is_objectid_char, "expected an object id")?;
            if id.len() > objectid::MAX_OBJECTID {
                return err("object id too long");
            }
            let id = String::from_utf8_lossy(id).into_owned();
            if name == "EMAILID" {
                SearchKey::EmailId(id)
            } else {
                SearchKey::ThreadId(id)
            }
        }
        "HEADER" => {
            let field = arg_string(c)?;
            let value = arg_string(c)?;
            SearchKey::Header(field, value)
        }
        "KEYWORD" | "UNKEYWORD" => {
            c.sp()?;
            let k = c.atom()?.to_owned();
            if name == "KEYWORD" {
                SearchKey::Keyword(k)
            } else {
                SearchKey::Unkeyword(k)
            }
        }
        "OLDER" | "YOUNGER" => {
            // RFC 5032: `"OLDER" SP nz-number` / `"YOUNGER" SP nz-number`.
            c.sp()?;
            let n = c.nz_number()?;
            if name == "OLDER" {
                SearchKey::Older(n)
            } else {
                SearchKey::Younger(n)
            }
        }
        "LARGER" | "SMALLER" => {
            c.sp()?;
            let n = c.number64()?;
            if name == "LARGER" {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            }
        }
        "NOT" => {
            c.sp()?;
            c.enter()?;
            let k = search_key(c)?;
            c.leave();
            SearchKey::Not(Box::new(k))
        }
        "OR" => {
            c.sp()?;
            c.enter()?;
            let a = search_key(c)?;
            c.sp()?;
            let b = search_key(c)?;
            c.leave();
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        "UID" => {
            c.sp()?;
            if c.eat(b'$') {
                SearchKey::SavedResult
            } else {
                SearchKey::Uid(c.seq_set()?)
            }
        }
        "MODSEQ" => {
            c.sp()?;
            if c.peek() == Some(b'"') {
                // entry-name SP entry-type-req: accepted and ignored.
                let entry = c.quoted()?;
                if !entry.starts_with(b"/flags/") {
                    return err("invalid MODSEQ entry name");
                }
                c.sp()?;
                let t = c.keyword()?;
                if !matches!(t.as_str(), "PRIV" | "SHARED" | "ALL") {
                    return err("invalid MODSEQ entry type");
                }
                c.sp()?;
            }
            SearchKey::ModSeq(ModSeq(c.number64()?))
        }
        _ => return err("unknown search key"),
    })
}
