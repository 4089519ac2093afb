//! Marketplace: which listings are valid (categories, tags, prices, versions), the fee split of a
//! sale, license keys (format, parsing, the hash they are looked up by) and signed download
//! tokens.
//!
//! The fee goes through `money::split`, the one split of every program: the platform's fee is
//! rounded half-up, the seller gets the remainder, so the two always sum to the price.

use super::keys::plain_id;
use super::money::{split, FULL_BPS, MAX_CENTS};
use super::time::Timestamp;
use super::{status_enum, Rejection, INVALID_TRANSITION};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

status_enum!(Category {
    FingerprintDatabase = "fingerprint_database",
    AudioDataset = "audio_dataset",
    Model = "model",
    Plugin = "plugin",
    Other = "other",
});

status_enum!(ItemStatus { Draft = "draft", Published = "published", Archived = "archived" });

/// Listing changes a seller may make. A published item can be withdrawn to a draft or archived;
/// an archived one listed again. Publishing also needs a file (`may_publish`).
pub fn transition(from: ItemStatus, to: ItemStatus) -> Result<(), Rejection> {
    use ItemStatus::*;
    match (from, to) {
        (Draft, Published) | (Draft, Archived) | (Published, Draft) | (Published, Archived) | (Archived, Published) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

/// An item is published only with a file to sell.
pub fn may_publish(has_file: bool) -> Result<(), Rejection> {
    if has_file {
        Ok(())
    } else {
        Err(Rejection::conflict("file_required", "Upload a file before publishing the item."))
    }
}

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_LICENSE_TERMS_CHARS: usize = 5_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 32;
/// Activations one license may hold at most (a listing sets its own limit up to this).
pub const MAX_ACTIVATION_LIMIT: i64 = 10_000;

/// A listing as a seller writes it (`POST`), or the fields a `PATCH` changes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<Category>,
    pub tags: Option<Vec<String>>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub license_terms: Option<String>,
    /// Instances one license may be activated on; 0: no limit.
    pub activation_limit: Option<i64>,
    /// PATCH only (a new item is a draft).
    pub status: Option<ItemStatus>,
}

/// A listing as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub id: String,
    pub seller_id: String,
    pub title: String,
    pub description: String,
    pub category: Category,
    pub tags: Vec<String>,
    pub price_cents: i64,
    pub currency: String,
    pub license_terms: String,
    pub activation_limit: Option<i64>,
    /// An admin's rate for this item; `None`: `MARKETPLACE_FEE_BPS` at each sale.
    pub fee_bps: Option<u32>,
    pub status: ItemStatus,
    /// Counts the item's changes (a write lands only at the version it read).
    pub version: i64,
    pub sales: i64,
    pub rating_sum: i64,
    pub review_count: i64,
    pub published_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Item {
    /// A new draft of `seller` from checked fields (`check_item` with `creating`).
    pub fn draft(id: String, seller_id: String, f: ItemFields, tags: Vec<String>, currency: &str, now: Timestamp) -> Item {
        Item {
            id,
            seller_id,
            title: f.title.unwrap_or_default().trim().to_owned(),
            description: f.description.unwrap_or_default(),
            category: f.category.unwrap_or(Category::Other),
            tags,
            price_cents: f.price_cents.unwrap_or(0),
            currency: currency.to_owned(),
            license_terms: f.license_terms.unwrap_or_default(),
            activation_limit: f.activation_limit.filter(|l| *l > 0),
            fee_bps: None,
            status: ItemStatus::Draft,
            version: 1,
            sales: 0,
            rating_sum: 0,
            review_count: 0,
            published_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The checked fields present in a PATCH, applied.
    pub fn apply(&mut self, f: ItemFields, tags: Option<Vec<String>>) {
        if let Some(title) = f.title {
            self.title = title.trim().to_owned();
        }
        if let Some(description) = f.description {
            self.description = description;
        }
        if let Some(category) = f.category {
            self.category = category;
        }
        if let Some(tags) = tags {
            self.tags = tags;
        }
        if let Some(price) = f.price_cents {
            self.price_cents = price;
        }
        if let Some(terms) = f.license_terms {
            self.license_terms = terms;
        }
        if let Some(limit) = f.activation_limit {
            self.activation_limit = (limit > 0).then_some(limit);
        }
    }

    /// Moves to `status` (checked with `transition`), stamping the first publication.
    pub fn set_status(&mut self, status: ItemStatus, has_file: bool, now: Timestamp) -> Result<(), Rejection> {
        transition(self.status, status)?;
        if status == ItemStatus::Published {
            may_publish(has_file)?;
            self.published_at.get_or_insert(now);
        }
        self.status = status;
        Ok(())
    }

    /// Whether anyone but its seller and admins may see it: a draft is private; an archived item
    /// stays visible to past buyers' links.
    pub fn is_public(&self) -> bool {
        self.status != ItemStatus::Draft
    }

    pub fn fee_bps_or(&self, default: u32) -> u32 {
        self.fee_bps.unwrap_or(default)
    }
}

/// A version of an item, with its file once uploaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub id: String,
    pub item_id: String,
    pub version_number: String,
    pub release_notes: String,
    pub file: Option<File>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub key: String,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub uploaded_at: Timestamp,
}

pub const MAX_RELEASE_NOTES_CHARS: usize = 5_000;
/// Versions one item may have.
pub const MAX_VERSIONS: usize = 200;

/// Checks a new version number against the item's versions: valid, and above every one there is
/// (versions only go up). Its canonical text on success.
pub fn check_new_version(number: &str, existing: &[&str]) -> Result<String, String> {
    let v = version(number)?;
    if let Some(top) = existing.iter().filter_map(|e| semver::Version::parse(e).ok()).max() {
        if v <= top {
            return Err(format!("must be above {top}, the highest version so far"));
        }
    }
    if existing.len() >= MAX_VERSIONS {
        return Err(format!("an item has at most {MAX_VERSIONS} versions"));
    }
    Ok(v.to_string())
}

/// The version an upload without a pending version creates: the next patch of the highest one
/// (or the release of a pre-release), or 1.0.0; checked like any new version (the cap, and a
/// patch number that cannot go higher).
pub fn next_version(existing: &[&str]) -> Result<String, String> {
    let next = match existing.iter().filter_map(|e| semver::Version::parse(e).ok()).max() {
        // After a pre-release comes its release (2.0.0-rc.1 → 2.0.0).
        Some(top) if !top.pre.is_empty() => semver::Version::new(top.major, top.minor, top.patch),
        Some(top) => {
            let patch = top.patch.checked_add(1).ok_or("cannot follow the highest version; name the next one")?;
            semver::Version::new(top.major, top.minor, patch)
        }
        None => semver::Version::new(1, 0, 0),
    };
    check_new_version(&next.to_string(), existing)
}

/// Checks the fields present (the field and why on failure) and returns the tags normalized.
/// `creating`: title, category and price are required.
pub fn check_item(f: &ItemFields, creating: bool, currency: &str) -> Result<Option<Vec<String>>, (&'static str, String)> {
    if creating {
        for (field, present) in [("title", f.title.is_some()), ("category", f.category.is_some()), ("price_cents", f.price_cents.is_some())] {
            if !present {
                return Err((field, "is required".into()));
            }
        }
    }
    if let Some(title) = &f.title {
        text(title, MAX_TITLE_CHARS, true).map_err(|why| ("title", why))?;
    }
    if let Some(description) = &f.description {
        text(description, MAX_DESCRIPTION_CHARS, false).map_err(|why| ("description", why))?;
    }
    if let Some(terms) = &f.license_terms {
        text(terms, MAX_LICENSE_TERMS_CHARS, false).map_err(|why| ("license_terms", why))?;
    }
    if let Some(price) = f.price_cents {
        if !(0..=MAX_CENTS).contains(&price) {
            return Err(("price_cents", format!("must be 0 (free) to {MAX_CENTS} cents")));
        }
    }
    if let Some(c) = &f.currency {
        if !c.eq_ignore_ascii_case(currency) {
            return Err(("currency", format!("must be {currency} (the billing currency)")));
        }
    }
    if let Some(limit) = f.activation_limit {
        if !(0..=MAX_ACTIVATION_LIMIT).contains(&limit) {
            return Err(("activation_limit", format!("must be 1–{MAX_ACTIVATION_LIMIT}, or 0 for no limit")));
        }
    }
    f.tags.as_deref().map(normalize_tags).transpose().map_err(|why| ("tags", why))
}

/// Visible text of at most `max` characters (control characters other than line breaks and tabs
/// refused); `required`: not blank.
fn text(value: &str, max: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Tags as written: at most 10, each 1–32 ASCII letters, digits, spaces, `_` or `-` with at
/// least one letter or digit. As stored and searched: lower case, runs of spaces, `_` and `-` as
/// one `-`, each once, in the order given.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let allowed = tag.len() <= MAX_TAG_CHARS && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-'));
        let words: Vec<&str> = tag.split([' ', '_', '-']).filter(|w| !w.is_empty()).collect();
        if !allowed || words.is_empty() {
            return Err(format!("each tag must be 1–{MAX_TAG_CHARS} ASCII letters, digits, spaces, _ or -"));
        }
        let tag = words.join("-").to_ascii_lowercase();
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// A fee rate an admin sets for one item: 0–100 %.
pub fn fee_rate(bps: i64) -> Result<u32, &'static str> {
    u32::try_from(bps).ok().filter(|b| *b <= FULL_BPS).ok_or("fee_bps must be 0–10000")
}

/// What a sale at `price_cents` pays: the platform's fee (`round_half_up(price × fee_bps /
/// 10000)`) and the seller's remainder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sale {
    pub price_cents: i64,
    pub fee_cents: i64,
    pub seller_cents: i64,
}

pub fn sale(price_cents: i64, fee_bps: u32) -> Sale {
    let parts = split(price_cents, fee_bps);
    Sale { price_cents, fee_cents: parts.platform, seller_cents: parts.other }
}

// --- search ------------------------------------------------------------------------------------

status_enum!(Sort {
    Relevance = "relevance",
    Newest = "newest",
    PriceAsc = "price_asc",
    PriceDesc = "price_desc",
    Popular = "popular",
    Rating = "rating",
});

/// Words of a search query, at most this many.
pub const MAX_QUERY_WORDS: usize = 10;
/// Results a search pages through at most (`cursor` is an offset).
pub const MAX_SEARCH_OFFSET: i64 = 10_000;

/// A free-text query as an FTS5 query: each word (letters and digits; everything else separates
/// words) quoted, all of them required, the last one also as a prefix (`jaz` finds `jazz`).
/// Nothing a user types reaches FTS5's query syntax. `None` when there is no word.
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(|w| w.chars().take(64).collect())
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query: Vec<String> = rest.iter().map(|w| format!("\"{w}\"")).collect();
    query.push(format!("\"{last}\"*"));
    Some(query.join(" "))
}

/// An average rating to two decimals, from the exact sum and count (`None`: no reviews).
pub fn average_rating(sum: i64, count: i64) -> Option<f64> {
    (count > 0).then(|| super::money::scale(sum, 100, count) as f64 / 100.0)
}

pub const MIN_RATING: i64 = 1;
pub const MAX_RATING: i64 = 5;

// --- reviews -----------------------------------------------------------------------------------

pub const MAX_REVIEW_TITLE_CHARS: usize = 120;
pub const MAX_REVIEW_TEXT_CHARS: usize = 5_000;

/// A buyer's review of an item, as sent. A buyer has one review per item; a second replaces it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFields {
    pub rating: i64,
    pub title: String,
    #[serde(default)]
    pub review_text: String,
}

/// A review's fields, checked: the field at fault and why.
pub fn check_review(r: &ReviewFields) -> Result<(), (&'static str, String)> {
    if !(MIN_RATING..=MAX_RATING).contains(&r.rating) {
        return Err(("rating", format!("must be a whole number from {MIN_RATING} to {MAX_RATING}")));
    }
    text(&r.title, MAX_REVIEW_TITLE_CHARS, true).map_err(|why| ("title", why))?;
    text(&r.review_text, MAX_REVIEW_TEXT_CHARS, false).map_err(|why| ("review_text", why))
}

// --- versions ----------------------------------------------------------------------------------

/// A version number: semantic versioning 2.0.0 (`1.4.0`, `2.0.0-rc.1`), ordered by its rules.
pub fn version(text: &str) -> Result<semver::Version, String> {
    if text.len() > 64 {
        return Err("must be at most 64 characters".into());
    }
    let v = semver::Version::parse(text).map_err(|e| format!("must be a semantic version such as 1.2.0 ({e})"))?;
    // Build metadata does not order versions: 1.0.0+a and 1.0.0+b would be the same version.
    if !v.build.is_empty() {
        return Err("must not carry build metadata (+...)".into());
    }
    Ok(v)
}

/// The version buyers get by default: the highest published one, pre-releases only when there
/// is nothing else.
pub fn latest<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let parsed: Vec<(semver::Version, &str)> = versions.into_iter().filter_map(|v| Some((semver::Version::parse(v).ok()?, v))).collect();
    let stable = parsed.iter().filter(|(v, _)| v.pre.is_empty()).max_by(|a, b| a.0.cmp(&b.0));
    stable.or_else(|| parsed.iter().max_by(|a, b| a.0.cmp(&b.0))).map(|(_, text)| *text)
}

// --- license keys ------------------------------------------------------------------------------

/// Crockford's base32 alphabet (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const KEY_PREFIX: &str = "SHM";
/// Symbols of a key: 25 × 5 = 125 random bits, shown in five groups of five.
const KEY_SYMBOLS: usize = 25;

/// A license key from 16 random bytes (its first 125 bits): `SHM-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`.
pub fn license_key(random: [u8; 16]) -> String {
    let bits = u128::from_be_bytes(random) >> 3;
    let mut key = String::from(KEY_PREFIX);
    for i in 0..KEY_SYMBOLS {
        if i % 5 == 0 {
            key.push('-');
        }
        let symbol = (bits >> (5 * (KEY_SYMBOLS - 1 - i))) & 31;
        key.push(CROCKFORD[symbol as usize] as char);
    }
    key
}

/// A key as a person may type it (any case, with or without dashes and spaces, `O` for 0, `I`
/// and `L` for 1), in its canonical form; `None` when it cannot be one.
pub fn parse_license_key(input: &str) -> Option<String> {
    if input.len() > 80 {
        return None;
    }
    let compact: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    let symbols = compact.strip_prefix(KEY_PREFIX)?;
    let mut canonical = String::from(KEY_PREFIX);
    for (i, c) in symbols.chars().enumerate() {
        let c = match c {
            'O' => '0',
            'I' | 'L' => '1',
            c if CROCKFORD.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        if i % 5 == 0 {
            canonical.push('-');
        }
        canonical.push(c);
    }
    (canonical.len() == KEY_PREFIX.len() + KEY_SYMBOLS + KEY_SYMBOLS / 5).then_some(canonical)
}

/// What D1 stores and looks a key up by: the hex SHA-256 of its canonical form.
pub fn key_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// What a seller's software sees of a key in listings: its last group.
pub fn key_hint(canonical: &str) -> String {
    format!("{KEY_PREFIX}-…-{}", &canonical[canonical.len().saturating_sub(5)..])
}

pub const MAX_INSTANCE_NAME_CHARS: usize = 255;

/// An instance name (the machine or installation a license is activated on).
pub fn check_instance_name(name: &str) -> Result<(), String> {
    text(name, MAX_INSTANCE_NAME_CHARS, true)
}

/// Whether one more activation fits the limit (`None`: no limit).
pub fn may_activate(active: i64, limit: Option<i64>) -> Result<(), Rejection> {
    match limit {
        Some(limit) if active >= limit => {
            Err(Rejection::conflict("activation_limit_reached", "This license is activated on as many instances as it allows."))
        }
        _ => Ok(()),
    }
}

status_enum!(OrderStatus { Pending = "pending", Completed = "completed", Refunded = "refunded" });
status_enum!(LicenseStatus { Active = "active", Disabled = "disabled", Revoked = "revoked" });

/// An order as stored: the sale snapshotted when it was placed.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: String,
    pub item_id: String,
    pub buyer_id: String,
    pub seller_id: String,
    pub price_cents: i64,
    pub fee_bps: u32,
    pub fee_cents: i64,
    pub seller_cents: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub checkout_url: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub refunded_at: Option<Timestamp>,
}

impl Order {
    /// A pending order of `buyer` for `item` at the item's price and fee.
    pub fn place(id: String, item: &Item, buyer: &str, default_fee_bps: u32, now: Timestamp) -> Order {
        let fee_bps = item.fee_bps_or(default_fee_bps);
        let sale = sale(item.price_cents, fee_bps);
        Order {
            id,
            item_id: item.id.clone(),
            buyer_id: buyer.to_owned(),
            seller_id: item.seller_id.clone(),
            price_cents: sale.price_cents,
            fee_bps,
            fee_cents: sale.fee_cents,
            seller_cents: sale.seller_cents,
            currency: item.currency.clone(),
            status: OrderStatus::Pending,
            checkout_url: None,
            created_at: now,
            completed_at: None,
            refunded_at: None,
        }
    }
}

/// Whether `buyer` may buy `item` (and at what the sale pays): not their own item (422), a
/// published one (409).
pub fn may_buy(item: &Item, buyer: &str) -> Result<(), Rejection> {
    if item.seller_id == buyer {
        return Err(Rejection::unprocessable("own_item", "Sellers cannot buy their own items."));
    }
    if item.status != ItemStatus::Published {
        return Err(Rejection::conflict("item_not_available", "This item is not for sale."));
    }
    Ok(())
}

/// A seller turns a license off and on; a revoked license (its order was refunded) stays so.
pub fn license_transition(from: LicenseStatus, to: LicenseStatus) -> Result<(), Rejection> {
    use LicenseStatus::*;
    match (from, to) {
        (Active, Disabled) | (Disabled, Active) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

status_enum!(ValidationCode {
    Valid = "valid",
    Revoked = "revoked",
    Disabled = "disabled",
    WrongItem = "wrong_item",
    Unknown = "unknown",
    InstanceNotFound = "instance_not_found",
});

/// What a license validation says about a key for `item_id` (and an instance, when asked): the
/// item is always checked, so a key of one item never validates another.
pub fn validation(license: Option<(&str, LicenseStatus)>, item_id: &str, instance_active: Option<bool>) -> ValidationCode {
    match license {
        None => ValidationCode::Unknown,
        Some((item, _)) if item != item_id => ValidationCode::WrongItem,
        Some((_, LicenseStatus::Revoked)) => ValidationCode::Revoked,
        Some((_, LicenseStatus::Disabled)) => ValidationCode::Disabled,
        Some(_) if instance_active == Some(false) => ValidationCode::InstanceNotFound,
        Some(_) => ValidationCode::Valid,
    }
}

/// Days a download link is valid from the purchase.
pub const DOWNLOAD_LINK_DAYS: i64 = 30;

// --- download tokens ---------------------------------------------------------------------------

/// A download token: the grant id and the expiry (unix seconds), signed with HMAC-SHA256 under a
/// key derived for downloads: `{grant}.{expires}.{signature, base64url}`.
pub fn download_token(key: &[u8], grant_id: &str, expires: Timestamp) -> String {
    use base64::Engine;
    let payload = format!("{grant_id}.{}", expires.unix());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{signature}")
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"download:");
    mac.update(payload.as_bytes());
    mac
}

/// Why a token does not open a download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours (malformed or a wrong signature): 403.
    Invalid,
    /// Ours, but past its expiry: 410.
    Expired,
}

/// The grant id of a token signed with `key` and not expired at `now`. The signature is checked
/// (in constant time) before anything in the token is believed.
pub fn verify_download_token<'a>(key: &[u8], token: &'a str, now: Timestamp) -> Result<&'a str, TokenError> {
    use base64::Engine;
    let (payload, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Invalid)?;
    mac(key, payload).verify_slice(&signature).map_err(|_| TokenError::Invalid)?;
    let (grant, expires) = payload.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let expires: i64 = expires.parse().map_err(|_| TokenError::Invalid)?;
    if !plain_id(grant) {
        return Err(TokenError::Invalid);
    }
    if now.unix() >= expires {
        return Err(TokenError::Expired);
    }
    Ok(grant)
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) range: the whole file, 200. A malformed header or several ranges are
    /// ignored, as RFC 9110 allows.
    Whole,
    /// Bytes `start..=end`, 206.
    Part { start: u64, end: u64 },
    /// Nothing of the file is in the range: 416.
    Unsatisfiable,
}

/// Reads `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let number = |t: &str| (!t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse::<u64>().ok()).flatten();
    let (start, end) = match (first, last) {
        ("", suffix) => match number(suffix) {
            Some(0) => return ByteRange::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return ByteRange::Whole,
        },
        (first, "") => match number(first) {
            Some(start) => (start, size.saturating_sub(1)),
            None => return ByteRange::Whole,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
            _ => return ByteRange::Whole,
        },
    };
    if size == 0 || start >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part { start, end }
}

/// Types a seller may upload (the file is served back with this type).
pub const FILE_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/json",
    "application/x-ndjson",
    "application/vnd.sqlite3",
    "application/x-sqlite3",
    "application/pdf",
    "text/csv",
    "text/plain",
    "audio/wav",
    "audio/flac",
    "audio/mpeg",
];

/// The upload's content type if it is allowed (parameters such as `; charset=` dropped).
pub fn file_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    FILE_TYPES.iter().copied().find(|t| *t == essence)
}

/// A file name safe in `Content-Disposition`: the title's letters, digits, `-`, `_` and `.`,
/// others as `_`, at most 100 characters, `download` when nothing is left.
pub fn file_name(title: &str, version: &str) -> String {
    let name: String = format!("{title}-{version}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(100)
        .collect();
    if name.trim_matches(['_', '.', '-']).is_empty() {
        "download".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_listing_transitions() {
        use ItemStatus::*;
        for (from, to, ok) in [
            (Draft, Published, true),
            (Published, Archived, true),
            (Archived, Published, true),
            (Published, Draft, true),
            (Draft, Archived, true),
            (Archived, Draft, false),
            (Draft, Draft, false),
        ] {
            assert_eq!(transition(from, to).is_ok(), ok, "{from:?} → {to:?}");
        }
        assert_eq!(may_publish(false).unwrap_err().code, "file_required");
    }

    #[test]
    fn items_are_checked_field_by_field() {
        let ok = ItemFields {
            title: Some("Jazz fingerprints".into()),
            category: Some(Category::FingerprintDatabase),
            price_cents: Some(1999),
            tags: Some(vec![" Jazz  Piano ".into(), "jazz_piano".into(), "Live-".into()]),
            ..Default::default()
        };
        assert_eq!(check_item(&ok, true, "usd").unwrap(), Some(vec!["jazz-piano".to_string(), "live".to_string()]));
        let field = |f: ItemFields, creating: bool| check_item(&f, creating, "usd").unwrap_err().0;
        assert_eq!(field(ItemFields { title: None, ..ok.clone() }, true), "title");
        assert_eq!(check_item(&ItemFields { title: None, ..ok.clone() }, false, "usd").unwrap().map(|t| t.len()), Some(2));
        assert_eq!(field(ItemFields { title: Some("  ".into()), ..ok.clone() }, true), "title");
        assert_eq!(field(ItemFields { title: Some("x".repeat(121)), ..ok.clone() }, true), "title");
        assert_eq!(field(ItemFields { description: Some("a\u{0}b".into()), ..ok.clone() }, true), "description");
        assert_eq!(field(ItemFields { price_cents: Some(-1), ..ok.clone() }, true), "price_cents");
        assert_eq!(field(ItemFields { price_cents: Some(MAX_CENTS + 1), ..ok.clone() }, true), "price_cents");
        assert_eq!(field(ItemFields { currency: Some("eur".into()), ..ok.clone() }, true), "currency");
        assert_eq!(field(ItemFields { activation_limit: Some(-1), ..ok.clone() }, true), "activation_limit");
        assert_eq!(field(ItemFields { activation_limit: Some(MAX_ACTIVATION_LIMIT + 1), ..ok.clone() }, true), "activation_limit");
        assert!(check_item(&ItemFields { activation_limit: Some(0), currency: Some("USD".into()), ..ok.clone() }, true, "usd").is_ok());
        for bad in ["a/b", "Ünïcode", "a\tb", " - ", "", &"x".repeat(33)] {
            assert_eq!(field(ItemFields { tags: Some(vec![bad.into()]), ..ok.clone() }, true), "tags", "{bad:?}");
        }
        assert_eq!(field(ItemFields { tags: Some((0..11).map(|i| format!("t{i}")).collect()), ..ok.clone() }, true), "tags");
        // Ten tags written, nine once normalized.
        let mut tags: Vec<String> = (0..9).map(|i| format!("t{i}")).collect();
        tags.push("T0".into());
        assert_eq!(check_item(&ItemFields { tags: Some(tags), ..ok }, true, "usd").unwrap().unwrap().len(), 9);
        assert_eq!(fee_rate(10_001), Err("fee_bps must be 0–10000"));
        assert_eq!(fee_rate(0), Ok(0));
    }

    #[test]
    fn the_fee_is_rounded_half_up_and_the_seller_gets_the_rest() {
        assert_eq!(sale(1999, 1500), Sale { price_cents: 1999, fee_cents: 300, seller_cents: 1699 });
        // 10 × 15 % = 1.5 → 2.
        assert_eq!(sale(10, 1500).fee_cents, 2);
        assert_eq!(sale(0, 1500), Sale { price_cents: 0, fee_cents: 0, seller_cents: 0 });
    }

    #[test]
    fn versions_order_by_semver_and_prefer_stable_releases() {
        assert!(version("1.2.3").is_ok());
        assert!(version("1.2").is_err() && version("v1.2.3").is_err() && version(&"1".repeat(65)).is_err());
        assert!(version("1.2.3+build.5").is_err() && version("1.2.3-rc.1").is_ok());
        assert_eq!(latest(["1.9.0", "1.10.0", "1.2.0"]), Some("1.10.0"));
        assert_eq!(latest(["1.0.0", "2.0.0-rc.1"]), Some("1.0.0"));
        assert_eq!(latest(["2.0.0-rc.1", "2.0.0-beta.2"]), Some("2.0.0-rc.1"));
        assert_eq!(latest([]), None);
    }

    #[test]
    fn versions_only_go_up_and_uploads_bump_the_patch() {
        assert_eq!(check_new_version("1.0.0", &[]), Ok("1.0.0".into()));
        assert_eq!(check_new_version("1.10.0", &["1.9.0", "1.2.0"]), Ok("1.10.0".into()));
        assert!(check_new_version("1.9.0", &["1.9.0"]).is_err());
        assert!(check_new_version("1.9.0-rc.1", &["1.9.0"]).is_err());
        assert!(check_new_version("2.0.0-rc.1", &["1.9.0"]).is_ok());
        assert_eq!(next_version(&[]).unwrap(), "1.0.0");
        assert_eq!(next_version(&["1.9.0", "1.10.2", "2.0.0-rc.1"]).unwrap(), "2.0.0");
        assert_eq!(next_version(&["1.10.2"]).unwrap(), "1.10.3");
        assert!(next_version(&["1.0.18446744073709551615"]).is_err(), "no wrap to 1.0.0");
        let many: Vec<String> = (0..MAX_VERSIONS).map(|i| format!("1.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(next_version(&many).is_err() && check_new_version("9.0.0", &many).is_err(), "at most {MAX_VERSIONS}");
    }

    #[test]
    fn an_item_publishes_only_with_a_file_and_keeps_its_first_date() {
        let fields = ItemFields { title: Some(" T ".into()), category: Some(Category::Model), price_cents: Some(5), ..Default::default() };
        let mut item = Item::draft("i".into(), "s".into(), fields, vec![], "usd", Timestamp::from_unix(1));
        assert_eq!(item.title, "T");
        assert!(!item.is_public());
        assert_eq!(item.set_status(ItemStatus::Published, false, Timestamp::from_unix(2)).unwrap_err().code, "file_required");
        item.set_status(ItemStatus::Published, true, Timestamp::from_unix(3)).unwrap();
        item.set_status(ItemStatus::Archived, true, Timestamp::from_unix(4)).unwrap();
        item.set_status(ItemStatus::Published, true, Timestamp::from_unix(5)).unwrap();
        assert_eq!(item.published_at, Some(Timestamp::from_unix(3)));
        assert_eq!(item.fee_bps_or(1500), 1500);
        item.apply(ItemFields { activation_limit: Some(3), ..Default::default() }, Some(vec!["x".into()]));
        assert_eq!((item.activation_limit, item.tags.clone(), item.title.as_str()), (Some(3), vec!["x".to_string()], "T"));
        item.apply(ItemFields { activation_limit: Some(0), ..Default::default() }, None);
        assert_eq!((item.activation_limit, item.tags.len()), (None, 1));
    }

    #[test]
    fn keys_read_back_however_they_are_typed() {
        let key = license_key([0xA5; 16]);
        assert_eq!(key.len(), 33);
        assert!(key.starts_with("SHM-") && key.split('-').skip(1).all(|g| g.len() == 5), "{key}");
        assert_eq!(parse_license_key(&key).as_deref(), Some(key.as_str()));
        assert_eq!(parse_license_key(&key.to_lowercase().replace('-', " ")).as_deref(), Some(key.as_str()));
        let zeros = license_key([0; 16]);
        assert_eq!(zeros, "SHM-00000-00000-00000-00000-00000");
        assert_eq!(parse_license_key("shm-ooooo-00000-00000-00000-00000").as_deref(), Some(zeros.as_str()));
        assert_eq!(parse_license_key("SHM-IIIII-LLLLL-11111-00000-00000"), parse_license_key("SHM-11111-11111-11111-00000-00000"));
        for bad in ["", "SHM", "SHM-00000", "XYZ-00000-00000-00000-00000-00000", "SHM-UUUUU-00000-00000-00000-00000", "SHM-00000-00000-00000-00000-000000"] {
            assert_eq!(parse_license_key(bad), None, "{bad}");
        }
        assert_eq!(key_hash(&zeros).len(), 64);
        assert_eq!(key_hint(&zeros), "SHM-…-00000");
    }

    #[test]
    fn queries_reach_fts5_only_as_quoted_words() {
        assert_eq!(fts_query("Jazz piano"), Some("\"Jazz\" \"piano\"*".into()));
        assert_eq!(fts_query("  \"NEAR(a b)\" OR x*  "), Some("\"NEAR\" \"a\" \"b\" \"OR\" \"x\"*".into()));
        assert_eq!(fts_query("café-lounge"), Some("\"café\" \"lounge\"*".into()));
        assert_eq!(fts_query(" -*:^ "), None);
        assert_eq!(fts_query(&"w ".repeat(50)).unwrap().matches('"').count(), 2 * MAX_QUERY_WORDS);
        assert_eq!(average_rating(14, 3), Some(4.67));
        assert_eq!(average_rating(0, 0), None);
    }

    #[test]
    fn reviews_are_checked_field_by_field() {
        let review = |rating, title: &str, text: &str| ReviewFields { rating, title: title.into(), review_text: text.into() };
        assert_eq!(check_review(&review(1, "Fine", "")), Ok(()));
        assert_eq!(check_review(&review(5, &"t".repeat(MAX_REVIEW_TITLE_CHARS), &"x".repeat(MAX_REVIEW_TEXT_CHARS))), Ok(()));
        for bad in [0, 6, -1, i64::MAX] {
            assert_eq!(check_review(&review(bad, "Fine", "")).unwrap_err().0, "rating", "{bad}");
        }
        assert_eq!(check_review(&review(3, "  ", "")).unwrap_err().0, "title");
        assert_eq!(check_review(&review(3, &"t".repeat(MAX_REVIEW_TITLE_CHARS + 1), "")).unwrap_err().0, "title");
        assert_eq!(check_review(&review(3, "Fine", &"x".repeat(MAX_REVIEW_TEXT_CHARS + 1))).unwrap_err().0, "review_text");
        assert_eq!(check_review(&review(3, "Fine", "a\u{0}b")).unwrap_err().0, "review_text");
    }

    #[test]
    fn validation_checks_the_item_before_anything_else() {
        use LicenseStatus::*;
        use ValidationCode as V;
        assert_eq!(validation(None, "a", None), V::Unknown);
        assert_eq!(validation(Some(("b", Active)), "a", None), V::WrongItem);
        assert_eq!(validation(Some(("b", Revoked)), "a", Some(true)), V::WrongItem, "nothing about another item's key");
        assert_eq!(validation(Some(("a", Revoked)), "a", Some(true)), V::Revoked);
        assert_eq!(validation(Some(("a", Disabled)), "a", None), V::Disabled);
        assert_eq!(validation(Some(("a", Active)), "a", Some(false)), V::InstanceNotFound);
        assert_eq!(validation(Some(("a", Active)), "a", Some(true)), V::Valid);
        assert_eq!(validation(Some(("a", Active)), "a", None), V::Valid);
        assert!(license_transition(Active, Disabled).is_ok() && license_transition(Disabled, Active).is_ok());
        assert!(license_transition(Revoked, Active).is_err() && license_transition(Active, Revoked).is_err());
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        use ByteRange::*;
        assert_eq!(byte_range(None, 100), Whole);
        assert_eq!(byte_range(Some("bytes=0-9"), 100), Part { start: 0, end: 9 });
        assert_eq!(byte_range(Some("bytes=90-"), 100), Part { start: 90, end: 99 });
        assert_eq!(byte_range(Some("bytes=-10"), 100), Part { start: 90, end: 99 });
        assert_eq!(byte_range(Some("bytes=-500"), 100), Part { start: 0, end: 99 });
        assert_eq!(byte_range(Some("bytes=50-500"), 100), Part { start: 50, end: 99 });
        assert_eq!(byte_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 100), Unsatisfiable);
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=9-1", "bytes=a-b", "bytes=-", "bytes=99999999999999999999-"] {
            assert_eq!(byte_range(Some(ignored), 100), Whole, "{ignored}");
        }
    }

    #[test]
    fn activations_stop_at_the_limit() {
        assert!(may_activate(2, Some(3)).is_ok());
        assert_eq!(may_activate(3, Some(3)).unwrap_err().code, "activation_limit_reached");
        assert!(may_activate(1_000_000, None).is_ok());
    }

    #[test]
    fn uploads_are_typed_from_an_allow_list_and_named_safely() {
        assert_eq!(file_type("Application/ZIP; charset=binary"), Some("application/zip"));
        assert_eq!(file_type("text/html"), None);
        assert_eq!(file_name("Jazz \"DB\"\r\n", "1.0.0"), "Jazz__DB___-1.0.0");
        assert_eq!(file_name("", ""), "download");
    }

    const KEY: &[u8] = b"download key";

    #[test]
    fn a_token_verifies_until_it_expires() {
        let expires = Timestamp::from_unix(2_000_000_000);
        let token = download_token(KEY, "grant-1", expires);
        assert_eq!(verify_download_token(KEY, &token, Timestamp::from_unix(1_999_999_999)), Ok("grant-1"));
        assert_eq!(verify_download_token(KEY, &token, expires), Err(TokenError::Expired));
        assert_eq!(verify_download_token(b"other key", &token, Timestamp::from_unix(0)), Err(TokenError::Invalid));
        // A later expiry under the same signature is not ours.
        let forged = token.replace("2000000000", "2100000000");
        assert_eq!(verify_download_token(KEY, &forged, Timestamp::from_unix(0)), Err(TokenError::Invalid));
    }

    proptest! {
        #[test]
        fn fee_and_seller_sum_to_the_price(price in 0i64..=MAX_CENTS, bps in 0u32..=FULL_BPS) {
            let s = sale(price, bps);
            prop_assert_eq!(s.fee_cents + s.seller_cents, price);
            prop_assert!(s.fee_cents >= 0 && s.seller_cents >= 0);
            // Within half a cent of the exact fee.
            prop_assert!((i128::from(s.fee_cents) * 20_000 - i128::from(price) * i128::from(bps) * 2).abs() <= 10_000);
        }

        #[test]
        fn a_query_is_only_quoted_words(q in ".{0,200}") {
            if let Some(query) = fts_query(&q) {
                for term in query.split(' ') {
                    let word = term.strip_suffix('*').unwrap_or(term);
                    prop_assert!(word.len() >= 3 && word.starts_with('"') && word.ends_with('"'), "{}", query);
                    prop_assert!(word[1..word.len() - 1].chars().all(char::is_alphanumeric), "{}", query);
                }
            }
        }

        #[test]
        fn every_key_parses_to_itself(random in any::<[u8; 16]>()) {
            let key = license_key(random);
            prop_assert_eq!(parse_license_key(&key), Some(key.clone()));
            prop_assert_eq!(parse_license_key(&key.to_lowercase()), Some(key));
        }

        #[test]
        fn no_tampered_token_verifies(grant in "[a-z0-9-]{1,36}", expires in 1i64..4_000_000_000, at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let token = download_token(KEY, &grant, Timestamp::from_unix(expires));
            let before = Timestamp::from_unix(expires - 1);
            prop_assert_eq!(verify_download_token(KEY, &token, before), Ok(grant.as_str()));
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            if let Ok(tampered) = String::from_utf8(bytes) {
                prop_assert!(verify_download_token(KEY, &tampered, before).is_err(), "{} verified", tampered);
            }
            for cut in [1, token.len() / 2, token.len() - 1] {
                prop_assert!(verify_download_token(KEY, &token[..cut], before).is_err());
            }
        }
    }
}
