//! SQL of `campaigns` and `redemptions`.

use super::{args, credits, rows, Db, Error, Result};
use crate::domain::campaigns::{Campaign, CampaignStatus, Offer, OfferType, Redemption, Rule, State, DUE, LIVE, REDEEMABLE};
use crate::domain::time::Timestamp;
use serde::Deserialize;

const COLUMNS: &str = "code, name, description, offer_type, offer_value, landing_url, status, starts_at, ends_at,
    max_uses, max_uses_per_user, uses, tags, created_by, created_at, updated_at";

#[derive(Deserialize)]
struct Row {
    code: String,
    name: String,
    description: Option<String>,
    offer_type: String,
    offer_value: i64,
    landing_url: String,
    status: String,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    max_uses: Option<i64>,
    max_uses_per_user: i64,
    uses: i64,
    tags: String,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Campaign {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let bad = |column, value: &str| Error::corrupt("campaigns", &r.code, column, value);
        Ok(Campaign {
            offer: Offer {
                kind: OfferType::parse(&r.offer_type).ok_or_else(|| bad("offer_type", &r.offer_type))?,
                value: r.offer_value,
            },
            status: CampaignStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            // Unreadable tags are an error, never `[]` (which the next edit would write back).
            tags: serde_json::from_str(&r.tags).map_err(|_| bad("tags", &r.tags))?,
            code: r.code,
            name: r.name,
            description: r.description,
            landing_url: r.landing_url,
            starts_at: r.starts_at.map(Timestamp::from_unix),
            ends_at: r.ends_at.map(Timestamp::from_unix),
            max_uses: r.max_uses,
            max_uses_per_user: r.max_uses_per_user,
            uses: r.uses,
            created_by: r.created_by,
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        })
    }
}

/// A rule of `domain::campaigns` (`LIVE`, `DUE`, …) as an SQL condition on the columns of
/// `campaigns`, qualified by `table` (`""`, or `"c."` in a join), with the instant bound at the
/// parameter `now` (`"?1"`). This is the rules' only other reading (see `Rule`): the atoms are
/// the same comparisons as `Rule::holds`, and a native test runs both readings over every kind
/// of campaign. Statuses are fixed identifiers, written as literals.
pub fn condition(rule: &Rule, table: &str, now: &str) -> String {
    let join = |rules: &[Rule], op: &str| {
        let parts: Vec<String> = rules.iter().map(|r| condition(r, table, now)).collect();
        format!("({})", parts.join(op))
    };
    match *rule {
        Rule::Status(status) => format!("{table}status = '{}'", status.as_str()),
        Rule::Started => format!("({table}starts_at IS NULL OR {table}starts_at <= {now})"),
        Rule::Ended => format!("({table}ends_at IS NOT NULL AND {table}ends_at <= {now})"),
        Rule::UsedUp => format!("({table}max_uses IS NOT NULL AND {table}uses >= {table}max_uses)"),
        Rule::Not(rule) => format!("NOT ({})", condition(rule, table, now)),
        Rule::All(rules) => join(rules, " AND "),
        Rule::Any(rules) => join(rules, " OR "),
    }
}

fn all(rows: Vec<Row>) -> Result<Vec<Campaign>> {
    rows.into_iter().map(Campaign::try_from).collect()
}

pub enum Inserted {
    Created(Box<Campaign>),
    CodeTaken,
}

fn values(c: &Campaign) -> [super::Arg; 16] {
    args![
        &c.code,
        &c.name,
        c.description.clone(),
        c.offer.kind.as_str(),
        c.offer.value,
        &c.landing_url,
        c.status.as_str(),
        c.starts_at.map(Timestamp::unix),
        c.ends_at.map(Timestamp::unix),
        c.max_uses,
        c.max_uses_per_user,
        c.uses,
        serde_json::to_string(&c.tags).unwrap_or_else(|_| "[]".into()),
        &c.created_by,
        c.created_at.unix(),
        c.updated_at.unix()
    ]
}

pub async fn insert(db: &Db, c: &Campaign) -> Result<Inserted> {
    let sql = format!(
        "INSERT INTO campaigns ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         RETURNING {COLUMNS}"
    );
    match db.write::<Row>(&sql, &values(c)).await {
        Ok(Some(row)) => Ok(Inserted::Created(Box::new(row.try_into()?))),
        Ok(None) => Err(Error::D1("campaign insert returned nothing".into())),
        Err(Error::Constraint(v)) if v.is_unique("campaigns.code") => Ok(Inserted::CodeTaken),
        Err(e) => Err(e),
    }
}

pub async fn find(db: &Db, code: &str) -> Result<Option<Campaign>> {
    let row = db.first::<Row>(&format!("SELECT {COLUMNS} FROM campaigns WHERE code = ?1"), &args![code]).await?;
    row.map(Campaign::try_from).transpose()
}

/// Writes `next`'s editable fields and status if the campaign is still as read (`expected`:
/// every field the update writes), else `None` (read again and retry): concurrent edits never
/// undo each other.
pub async fn update(db: &Db, expected: &Campaign, next: &Campaign) -> Result<Option<Campaign>> {
    // ?1–?16: `next`, ?17–?29: `expected`, both in COLUMNS order (D1 wants no argument beyond
    // the highest one used).
    let sql = format!(
        "UPDATE campaigns SET name = ?2, description = ?3, offer_type = ?4, offer_value = ?5, landing_url = ?6,
           status = ?7, starts_at = ?8, ends_at = ?9, max_uses = ?10, max_uses_per_user = ?11, tags = ?13, updated_at = ?16
         WHERE code = ?1 AND name = ?18 AND description IS ?19 AND offer_type = ?20 AND offer_value = ?21
           AND landing_url = ?22 AND status = ?23 AND starts_at IS ?24 AND ends_at IS ?25 AND max_uses IS ?26
           AND max_uses_per_user = ?27 AND json(tags) = json(?29)
         RETURNING {COLUMNS}"
    );
    let mut args = values(next).to_vec();
    args.extend(values(expected).into_iter().take(13));
    db.first::<Row>(&sql, &args).await?.map(Campaign::try_from).transpose()
}

/// Live campaigns (`domain::campaigns::LIVE`), newest first before the cursor.
pub async fn list_live(db: &Db, now: Timestamp, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<Campaign>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns
         WHERE {} AND (?2 IS NULL OR (created_at, code) < (?2, ?3))
         ORDER BY created_at DESC, code DESC LIMIT ?4",
        condition(&LIVE, "", "?1")
    );
    all(db.all(&sql, &args![now.unix(), before.map(|b| b.0), before.map(|b| &b.1), limit]).await?)
}

/// Every campaign (optionally of one status), newest first before the cursor.
pub async fn list(
    db: &Db,
    status: Option<CampaignStatus>,
    before: Option<&(i64, String)>,
    limit: u32,
) -> Result<Vec<Campaign>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR (created_at, code) < (?2, ?3))
         ORDER BY created_at DESC, code DESC LIMIT ?4"
    );
    all(db.all(&sql, &args![status.map(|s| s.as_str()), before.map(|b| b.0), before.map(|b| &b.1), limit]).await?)
}

#[derive(Deserialize)]
struct StateRow {
    code: String,
    status: String,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    max_uses: Option<i64>,
    max_uses_per_user: i64,
    uses: i64,
}

/// Up to `limit` campaigns the cron job must move on now (`domain::campaigns::DUE`), with what
/// its rules need to know of them. Each branch of `DUE` is a range of an index of migration 0005.
pub async fn due(db: &Db, now: Timestamp, limit: u32) -> Result<Vec<(String, State)>> {
    let sql = format!(
        "SELECT code, status, starts_at, ends_at, max_uses, max_uses_per_user, uses FROM campaigns WHERE {} LIMIT ?2",
        condition(&DUE, "", "?1")
    );
    let rows: Vec<StateRow> = db.all(&sql, &args![now.unix(), limit]).await?;
    rows.into_iter()
        .map(|r| {
            let status = CampaignStatus::parse(&r.status).ok_or_else(|| Error::corrupt("campaigns", &r.code, "status", &r.status))?;
            let state = State {
                status,
                starts_at: r.starts_at.map(Timestamp::from_unix),
                ends_at: r.ends_at.map(Timestamp::from_unix),
                uses: r.uses,
                max_uses: r.max_uses,
                max_uses_per_user: r.max_uses_per_user,
            };
            Ok((r.code, state))
        })
        .collect()
}

/// Makes the transitions `(code, from, to)` in one statement, each only if its campaign still
/// has the status `from` it was decided on; returns how many were made.
pub async fn advance(db: &Db, moves: &[(String, CampaignStatus, CampaignStatus)], now: Timestamp) -> Result<usize> {
    if moves.is_empty() {
        return Ok(0);
    }
    let moves: Vec<(&str, &str, &str)> = moves.iter().map(|(code, from, to)| (code.as_str(), from.as_str(), to.as_str())).collect();
    let json = serde_json::to_string(&moves).map_err(|e| Error::D1(e.to_string()))?;
    let sql = "UPDATE campaigns SET status = m.value ->> 2, updated_at = ?2
               FROM json_each(?1) AS m
               WHERE campaigns.code = m.value ->> 0 AND campaigns.status = m.value ->> 1";
    db.run(sql, &args![json, now.unix()]).await
}

pub async fn user_uses(db: &Db, code: &str, user: &str) -> Result<i64> {
    #[derive(Deserialize)]
    struct Count {
        n: i64,
    }
    let sql = "SELECT COUNT(*) AS n FROM redemptions WHERE campaign_code = ?1 AND user_id = ?2";
    Ok(db.first::<Count>(sql, &args![code, user]).await?.map_or(0, |c| c.n))
}

/// Redeems atomically: the redemption is written only if the campaign is `REDEEMABLE` (live,
/// uses left) and the user is under the per-user limit (`domain::campaigns::redeemable`, checked
/// inside the INSERT so that concurrent redemptions cannot overshoot); the use counter and, for
/// a credits offer, the credit ledger follow only if it was. `None`: refused.
pub async fn redeem(db: &Db, id: &str, code: &str, user: &str, credits_offer: Option<i64>, now: Timestamp) -> Result<Option<i64>> {
    let insert = format!(
        "INSERT INTO redemptions (id, campaign_code, user_id, seq, offer_type, offer_value, created_at)
         SELECT ?1, c.code, ?3, u.n + 1, c.offer_type, c.offer_value, ?4
         FROM campaigns c, (SELECT COUNT(*) AS n FROM redemptions WHERE campaign_code = ?2 AND user_id = ?3) u
         WHERE c.code = ?2 AND {} AND u.n < c.max_uses_per_user
         RETURNING seq",
        condition(&REDEEMABLE, "c.", "?4")
    );
    let count = "UPDATE campaigns SET uses = uses + 1, updated_at = ?4 WHERE code = ?2 AND EXISTS (SELECT 1 FROM redemptions WHERE id = ?1)";
    let args = args![id, code, user, now.unix()];
    let mut statements = vec![db.statement(&insert, &args)?, db.statement(count, &args)?];
    if let Some(amount) = credits_offer {
        statements.push(credits::campaign_credit(db, user, amount, code, id, now)?);
    }
    #[derive(Deserialize)]
    struct Seq {
        seq: i64,
    }
    let results = db.batch(statements).await?;
    Ok(rows::<Seq>(&results, 0)?.first().map(|s| s.seq))
}

#[derive(Deserialize)]
struct RedemptionRow {
    id: String,
    campaign_code: String,
    offer_type: String,
    offer_value: i64,
    created_at: i64,
}

/// A user's redemptions, newest first before the cursor.
pub async fn redemptions_of(db: &Db, user: &str, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<Redemption>> {
    let sql = "SELECT id, campaign_code, offer_type, offer_value, created_at FROM redemptions
               WHERE user_id = ?1 AND (?2 IS NULL OR (created_at, id) < (?2, ?3))
               ORDER BY created_at DESC, id DESC LIMIT ?4";
    let rows: Vec<RedemptionRow> = db.all(sql, &args![user, before.map(|b| b.0), before.map(|b| &b.1), limit]).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Redemption {
                offer: Offer {
                    kind: OfferType::parse(&r.offer_type).ok_or_else(|| Error::corrupt("redemptions", &r.id, "offer_type", &r.offer_type))?,
                    value: r.offer_value,
                },
                id: r.id,
                campaign_code: r.campaign_code,
                created_at: Timestamp::from_unix(r.created_at),
            })
        })
        .collect()
}

/// A campaign's redemptions per UTC day and the conversions of users after they redeemed it.
#[derive(Debug, Default, Deserialize)]
pub struct Outcomes {
    pub conversions: i64,
    /// Those conversions' amounts net of refunds.
    pub revenue_cents: i64,
}

pub async fn outcomes(db: &Db, code: &str) -> Result<Outcomes> {
    let sql = "SELECT COUNT(*) AS conversions,
            COALESCE(SUM(c.amount_cents - COALESCE((SELECT MAX(r.refunded_total) FROM refunds r WHERE r.conversion_id = c.id), 0)), 0) AS revenue_cents
        FROM conversions c
        JOIN (SELECT user_id, MIN(created_at) AS first_at FROM redemptions WHERE campaign_code = ?1 GROUP BY user_id) d
          ON d.user_id = c.user_id AND c.occurred_at >= d.first_at";
    Ok(db.first::<Outcomes>(sql, &args![code]).await?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub struct DayCount {
    pub day: i64,
    pub n: i64,
}

pub async fn redemptions_by_day(db: &Db, code: &str) -> Result<Vec<DayCount>> {
    let sql = "SELECT created_at / 86400 AS day, COUNT(*) AS n FROM redemptions WHERE campaign_code = ?1 GROUP BY day ORDER BY day";
    db.all(sql, &args![code]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaigns::{State, DUE, OVER};

    #[test]
    fn rules_render_as_plain_sql() {
        assert_eq!(
            condition(&LIVE, "c.", "?4"),
            "(c.status = 'active' AND (c.starts_at IS NULL OR c.starts_at <= ?4) AND NOT ((c.ends_at IS NOT NULL AND c.ends_at <= ?4)))"
        );
        for status in CampaignStatus::ALL {
            assert!(status.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{status:?}");
        }
    }

    /// Runs each rule's SQL in SQLite (python3's sqlite3, the engine D1 runs) over a table of
    /// every kind of campaign, and compares what it selects with `Rule::holds`.
    #[test]
    fn the_sql_of_a_rule_selects_exactly_the_campaigns_it_holds_for() {
        let now = Timestamp::from_unix(10);
        let dates = [None, Some(9), Some(10), Some(11)];
        let mut states = Vec::new();
        for &status in CampaignStatus::ALL {
            for starts_at in dates {
                for ends_at in dates {
                    for (uses, max_uses) in [(0, None), (2, Some(3)), (3, Some(3))] {
                        let t = |d: Option<i64>| d.map(Timestamp::from_unix);
                        states.push(State { status, starts_at: t(starts_at), ends_at: t(ends_at), uses, max_uses, max_uses_per_user: 1 });
                    }
                }
            }
        }
        let rules = [LIVE, REDEEMABLE, OVER, DUE];
        let rows: Vec<serde_json::Value> = states
            .iter()
            .map(|c| serde_json::json!([c.status.as_str(), c.starts_at.map(Timestamp::unix), c.ends_at.map(Timestamp::unix), c.uses, c.max_uses]))
            .collect();
        let queries: Vec<String> = rules.iter().map(|r| condition(r, "c.", "?1")).collect();
        let script = r#"
import json, sqlite3, sys
data = json.load(sys.stdin)
con = sqlite3.connect(":memory:")
con.execute("CREATE TABLE campaigns (id INTEGER PRIMARY KEY, status TEXT, starts_at INTEGER, ends_at INTEGER, uses INTEGER, max_uses INTEGER)")
con.executemany("INSERT INTO campaigns (id, status, starts_at, ends_at, uses, max_uses) VALUES (?, ?, ?, ?, ?, ?)",
                [[i] + row for i, row in enumerate(data["rows"])])
print(json.dumps([[r[0] for r in con.execute("SELECT id FROM campaigns c WHERE " + q + " ORDER BY id", (data["now"],))]
                  for q in data["queries"]]))
"#;
        let input = serde_json::json!({"rows": rows, "queries": queries, "now": now.unix()});
        let selected: Vec<Vec<usize>> = serde_json::from_slice(&crate::store::run_in_sqlite(script, &input)).unwrap();
        for ((rule, sql), selected) in rules.iter().zip(&queries).zip(selected) {
            let holds: Vec<usize> = (0..states.len()).filter(|&i| rule.holds(&states[i], now)).collect();
            assert!(!holds.is_empty() && holds.len() < states.len(), "{sql}: a rule that tells nothing apart");
            assert_eq!(selected, holds, "{sql}");
        }
    }
}
