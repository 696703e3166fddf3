-- Login limits that hold under concurrency and that a guesser on a shared
-- address cannot turn against everyone there.
--
-- * Attempts are reserved before the password is checked: one row per
--   subject in login_failures, inserted under per-subject advisory locks
--   after counting the window's rows (failures and attempts in flight
--   alike). A correct password deletes its attempt's rows; a wrong one
--   leaves them as its failure; a crashed process leaves them too (the
--   conservative side). So N concurrent guesses evaluate at most the limit,
--   across worker processes and hosts.
-- * known_addresses: (account, address) pairs that logged in successfully
--   recently. From such an address the account's failures are counted
--   against the pair alone ('p:' subject), neither against the account
--   nor against the address: a guesser elsewhere, or one spraying other
--   accounts from a shared address, does not lock the owner out there.
-- * login_successes: successful logins per account, limited too.
-- * sessions are capped per user, the oldest ended first.

-- A pair subject is 'p:' || lower(email) || '|' || address.
ALTER TABLE login_failures DROP CONSTRAINT login_failures_subject_check;
ALTER TABLE login_failures ADD CONSTRAINT login_failures_subject_check
    CHECK (char_length(subject) <= 400);
-- The attempt a row was reserved for (NULL for failures recorded before).
ALTER TABLE login_failures ADD COLUMN attempt bigint;
CREATE INDEX login_failures_attempt ON login_failures (attempt);
CREATE SEQUENCE login_attempt_ids;

CREATE TABLE login_successes (
    subject      text        NOT NULL CHECK (char_length(subject) <= 300),
    succeeded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_successes_subject ON login_successes (subject, succeeded_at);
CREATE INDEX login_successes_succeeded_at ON login_successes (succeeded_at);

CREATE TABLE known_addresses (
    account text        NOT NULL CHECK (char_length(account) <= 300),
    address text        NOT NULL CHECK (char_length(address) <= 100),
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, address)
);
CREATE INDEX known_addresses_seen_at ON known_addresses (seen_at);

-- The oldest sessions of a user are found (and ended) past the cap.
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);
