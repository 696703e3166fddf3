-- Users, with a row version that increases on every change.
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email       text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    version     integer     NOT NULL DEFAULT 1,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Emails are unique regardless of case, but stored as the user typed them.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Whoever updates a row (this service, another one, psql), the version and
-- updated_at move; an update that changes nothing leaves both alone so that
-- ETags stay valid.
CREATE FUNCTION users_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.email) IS NOT DISTINCT FROM (OLD.name, OLD.email) THEN
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
    ELSE
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    END IF;
    NEW.inserted_at := OLD.inserted_at;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_touch();
