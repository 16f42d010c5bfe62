"""The secret corpus: planted secrets in every shape the scanner must redact, and look-alikes it must keep.

Each ``Secret`` is (id, path, text, values, kept): every string in ``values`` must be absent from the
governed text, and ``kept`` (the part of the line around the value) must still be there. Each
``LookAlike`` is (id, path, text): the governed text must equal the input. All credentials are
fakes shaped like real ones; none is valid anywhere.
"""

from __future__ import annotations

from typing import NamedTuple


class Secret(NamedTuple):
    id: str
    path: str
    text: str
    values: tuple[str, ...]
    kept: str


class LookAlike(NamedTuple):
    id: str
    path: str
    text: str


AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "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"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM_BODY = "MIIEowIBAAKCAQEAx7Qw9Er8Ty7Ui6Op5As4Df3Gh2Jk1Lz0Xc9Vb8Nm7Qw6Er5Ty4Ui3Op2As1Df"
OPENSSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"


def S(id: str, path: str, text: str, *values: str, kept: str = "") -> Secret:  # noqa: N802
    return Secret(id, path, text, values, kept)


SECRETS: list[Secret] = [
    # ini / cfg / properties
    S("ini-spaced", "config.ini", "[db]\npassword = Vq3nR8tLp2Xw\n", "Vq3nR8tLp2Xw", kept="password = "),
    S("ini-tight", "notes.md", "password=Vq3nR8tLp2Xa\n", "Vq3nR8tLp2Xa", kept="password="),
    S(
        "ini-db-password",
        "runbook.txt",
        "db_password = Zr7uQm4Hs9Kd\n",
        "Zr7uQm4Hs9Kd",
        kept="db_password = ",
    ),
    S(
        "properties",
        "application.properties",
        "spring.datasource.password=Spr1ngPw9Zx\n",
        "Spr1ngPw9Zx",
        kept="spring.datasource.password=",
    ),
    S(
        "ado-connection-string",
        "web.md",
        "Server=db;User Id=app;Password=Ad0Pw9Zx2Qw;Pooling=true\n",
        "Ad0Pw9Zx2Qw",
        kept=";Pooling=true",
    ),
    # env / shell
    S("env", ".env", "DB_PASSWORD=Zr7uQm4Hs9Ke\nDEBUG=1\n", "Zr7uQm4Hs9Ke", kept="DEBUG=1"),
    S(
        "env-export",
        "deploy.md",
        "export API_TOKEN=tok4f9a8b7c6d5e4f3a2b1c\n",
        "tok4f9a8b7c6d5e4f3a2b1c",
        kept="export API_TOKEN=",
    ),
    S(
        "env-quoted",
        "settings.txt",
        'SECRET_KEY="dj4ng0-s3cr3t-k3y-Qw9Er8Ty"\n',
        "dj4ng0-s3cr3t-k3y-Qw9Er8Ty",
        kept='SECRET_KEY="',
    ),
    S(
        "shell-env-prefix",
        "ops.md",
        "MYSQL_PWD=Lt6wNb2Jc8Pf mysql -u root billing\n",
        "Lt6wNb2Jc8Pf",
        kept=" mysql -u root billing",
    ),
    S(
        "pgpassword",
        "backup.sh",
        "PGPASSWORD=Pg7sQl2Pw9Zx pg_dump -h db -U app app > app.sql\n",
        "Pg7sQl2Pw9Zx",
        kept="pg_dump -h db -U app app",
    ),
    S(
        "flag-equals",
        "cli.md",
        "ledger-sync --password=Fl4gPw9Zx2Qw --host db\n",
        "Fl4gPw9Zx2Qw",
        kept="--host db",
    ),
    S(
        "flag-space",
        "cli.md",
        "ledger-sync --password Fl4gPw9Zx2Qe --host db\n",
        "Fl4gPw9Zx2Qe",
        kept="--host db",
    ),
    S("mysql-p-quoted", "ops.txt", "mysql -u root -p'My5qlR00tPw' billing\n", "My5qlR00tPw", kept="billing"),
    S(
        "mysql-p-attached",
        "ops.txt",
        "mysqldump -uroot -pMy5qlR00tPx billing\n",
        "My5qlR00tPx",
        kept="billing",
    ),
    S(
        "compose-list",
        "docker-compose.md",
        "    environment:\n      - POSTGRES_PASSWORD=C0mp0sePw9\n",
        "C0mp0sePw9",
        kept="- POSTGRES_PASSWORD=",
    ),
    S(
        "docker-e",
        "run.md",
        "docker run -e REDIS_PASSWORD=D0ck3rPw9Zx redis:7\n",
        "D0ck3rPw9Zx",
        kept="redis:7",
    ),
    # yaml / toml / json / xml
    S(
        "yaml-plain",
        "settings.yaml",
        "db:\n  password: Vq3nR8tLp2Xb\n  host: db\n",
        "Vq3nR8tLp2Xb",
        kept="host: db",
    ),
    S(
        "yaml-passphrase",
        "notes.md",
        'vpn:\n  passphrase: "correct horse battery 9staple"\n',
        "correct horse battery 9staple",
        kept="passphrase: ",
    ),
    S(
        "yaml-single-quoted",
        "values.yaml",
        "db_password: 'Zr7uQm4Hs9Kf'\n",
        "Zr7uQm4Hs9Kf",
        kept="db_password: '",
    ),
    S(
        "yaml-k8s-data",
        "secret.md",
        "data:\n  password: cGFzc3dvcmQxMjM0NTY3OA==\n",
        "cGFzc3dvcmQxMjM0NTY3OA==",
    ),
    S("toml", "pyproject.md", '[tool.db]\npassword = "T0mlPw9Zx2Qw"\n', "T0mlPw9Zx2Qw", kept='password = "'),
    S(
        "json",
        "config.json.txt",
        '{"user": "app", "password": "J5onPw9Zx2Qw"}\n',
        "J5onPw9Zx2Qw",
        kept='"user": "app"',
    ),
    S(
        "json-api-key",
        "client.md",
        '{"apiKey": "k3yV4lu3Qw9Er8Ty7U", "region": "eu"}\n',
        "k3yV4lu3Qw9Er8Ty7U",
        kept='"region": "eu"',
    ),
    S(
        "xml-element",
        "pom.md",
        "<server><password>Xm1Pw9Zx2Qw</password></server>\n",
        "Xm1Pw9Zx2Qw",
        kept="<password>",
    ),
    S(
        "xml-appsettings",
        "web.config.md",
        '<add key="DbPassword" value="N3tPw9Zx2Qw" />\n',
        "N3tPw9Zx2Qw",
        kept='<add key="DbPassword" value="',
    ),
    S(
        "rails-secret-key-base",
        "secrets.md",
        "production:\n  secret_key_base: 4f8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c\n",
        "4f8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    ),
    # code
    S(
        "python",
        "settings.py",
        'DB_PASSWORD = "Pyth0nPw9Zx"\nDEBUG = False\n',
        "Pyth0nPw9Zx",
        kept="DEBUG = False",
    ),
    S(
        "javascript",
        "app.js",
        "const clientSecret = 'cl1entS3cr3tQw9Er8';\n",
        "cl1entS3cr3tQw9Er8",
        kept="const clientSecret = '",
    ),
    S(
        "js-camel-object",
        "db.ts",
        'connect({ host: "db", dbPassword: "C4melPw9Zx" });\n',
        "C4melPw9Zx",
        kept='host: "db"',
    ),
    S("go", "main.go", 'token := "g0T0k3nQw9Er8Ty7Ui"\n', "g0T0k3nQw9Er8Ty7Ui", kept="token := "),
    S(
        "ruby-hash-rocket",
        "config.rb",
        'Db.connect(:password => "Rub7Pw9Zx2Qw")\n',
        "Rub7Pw9Zx2Qw",
        kept=":password => ",
    ),
    S("php", "config.php", "$db_pass = 'Php5Pw9Zx2Qw';\n", "Php5Pw9Zx2Qw", kept="$db_pass = '"),
    S(
        "sql-identified-by",
        "migrate.sql",
        "CREATE USER app IDENTIFIED BY 'Sq1Pw9Zx2Qw';\n",
        "Sq1Pw9Zx2Qw",
        kept="CREATE USER app IDENTIFIED BY",
    ),
    # connection strings and URLs
    S(
        "postgres-url",
        "README.md",
        "Connect with postgres://app:Pg5UrlPw9Zx@db.internal:5432/app today.\n",
        "Pg5UrlPw9Zx",
        kept="@db.internal:5432/app today.",
    ),
    S(
        "mysql-url",
        "notes.txt",
        "DATABASE_URL=mysql://root:My5UrlPw9Zx@10.0.0.5/billing\n",
        "My5UrlPw9Zx",
        kept="@10.0.0.5/billing",
    ),
    S(
        "mongodb-srv",
        "notes.txt",
        "uri: mongodb+srv://svc:M0ng0Pw9Zx@cluster0.ab1cd.mongodb.net/db\n",
        "M0ng0Pw9Zx",
        kept="mongodb+srv://svc:",
    ),
    S(
        "redis-url",
        "notes.txt",
        "cache at redis://:R3d1sPw9Zx@cache:6379/0 for sessions\n",
        "R3d1sPw9Zx",
        kept="@cache:6379/0 for sessions",
    ),
    S(
        "amqp-url",
        "notes.txt",
        "broker = amqp://guest:Amq9Pw2Zx@rabbit:5672/\n",
        "Amq9Pw2Zx",
        kept="@rabbit:5672/",
    ),
    S(
        "https-basic-auth",
        "notes.md",
        "clone https://deploy:H7tpPw9Zx@git.internal/repo.git first\n",
        "H7tpPw9Zx",
        kept="@git.internal/repo.git first",
    ),
    S(
        "query-api-key",
        "notes.md",
        "GET https://api.example.net/v1/items?api_key=Qs7Key9Zx2Qw8Er&page=2\n",
        "Qs7Key9Zx2Qw8Er",
        kept="&page=2",
    ),
    S(
        "curl-user",
        "ops.md",
        "curl -u deploy:Cu7lPw9Zx https://ci.internal/api\n",
        "Cu7lPw9Zx",
        kept="https://ci.internal/api",
    ),
    # headers and tokens
    S(
        "authorization-bearer",
        "api.md",
        "Authorization: Bearer 8f7e6d5c4b3a2f1e0d9c8b7aZ\n",
        "8f7e6d5c4b3a2f1e0d9c8b7aZ",
        kept="Authorization: Bearer ",
    ),
    S(
        "authorization-basic",
        "api.md",
        'curl -H "Authorization: Basic ZGVwbG95Okg3dHBQdzlaeA==" https://x.io\n',
        "ZGVwbG95Okg3dHBQdzlaeA==",
        kept="https://x.io",
    ),
    S(
        "x-api-key-header",
        "api.md",
        "X-Api-Key: 5Hk2Lm9Qw8Er7Ty6Ui\n",
        "5Hk2Lm9Qw8Er7Ty6Ui",
        kept="X-Api-Key: ",
    ),
    S("jwt-in-prose", "chat", f"my session cookie is {JWT} if you need it\n", JWT, kept="if you need it"),
    S(
        "aws-pair-slack",
        "#billing 2024-03-01",
        f"temp creds for the billing bucket: {AWS_ID} / {AWS_SECRET}\n",
        AWS_ID,
        AWS_SECRET,
        kept="temp creds for the billing bucket: ",
    ),
    S(
        "aws-pair-next-line",
        "chat",
        f"key id {AWS_ID}\nand the secret is {AWS_SECRET} ok\n",
        AWS_ID,
        AWS_SECRET,
        kept="and the secret is",
    ),
    S("aws-secret-env", "deploy.md", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n", AWS_SECRET),
    S(
        "github-classic",
        "chat",
        "use ghp_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2 for the bot\n",
        "ghp_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2",
        kept="for the bot",
    ),
    S(
        "github-fine-grained",
        "chat",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJ works\n",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJ",
    ),
    S(
        "gitlab-pat",
        "chat",
        "gitlab token glpat-Ab1Cd2Ef3Gh4Ij5Kl6Mn rotate\n",
        "glpat-Ab1Cd2Ef3Gh4Ij5Kl6Mn",
        kept="rotate",
    ),
    S(
        "slack-bot-token",
        "chat",
        "bot token xoxb-112233445566-778899001122-AbCdEfGhIjKlMnOpQrStUvWx ok\n",
        "xoxb-112233445566-778899001122-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    S(
        "slack-webhook",
        "chat",
        "post to https://hooks.slack.com/services/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\n",
        "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8",
    ),
    S(
        "stripe-live",
        "billing.md",
        "stripe key sk_live_51Hk2Lm9Qw8Er7Ty6Ui5Op4As3Df\n",
        "sk_live_51Hk2Lm9Qw8Er7Ty6Ui5Op4As3Df",
        kept="stripe key ",
    ),
    S(
        "google-api-key",
        "notes.md",
        "maps key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW in the console\n",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        kept="in the console",
    ),
    S(
        "openai-project-key",
        "chat",
        "the eval key sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3\n",
        "sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3",
    ),
    S(
        "anthropic-key",
        "chat",
        "claude key sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv\n",
        "sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv",
    ),
    S(
        "npm-token",
        ".npmrc.md",
        "token npm_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2\n",
        "npm_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2",
    ),
    S(
        "huggingface-token",
        "chat",
        "HF hf_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1W for the hub\n",
        "hf_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1W",
    ),
    S(
        "pem-rsa",
        "notes.md",
        f"# Rotation\n\nold key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n"
        "-----END RSA PRIVATE KEY-----\nDelete it after the rotation.\n",
        PEM_BODY,
        kept="Delete it after the rotation.",
    ),
    S(
        "openssh-key",
        "chat",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{OPENSSH_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
        "that was the deploy key, sorry\n",
        OPENSSH_BODY,
        kept="that was the deploy key, sorry",
    ),
    S(
        "prose-password-colon",
        "chat",
        "The new password: Vq3nR8tLp2Xc9 (rotate monthly)\n",
        "Vq3nR8tLp2Xc9",
        kept="(rotate monthly)",
    ),
]

LOOK_ALIKES: list[LookAlike] = [
    LookAlike(*row)
    for row in [
        ("password-policy", "config.ini", "password_policy = 12 characters\n"),
        ("password-min-length", ".env", "PASSWORD_MIN_LENGTH=12\n"),
        ("env-reference-braces", "settings.yaml", "password: ${DB_PASSWORD}\n"),
        ("env-reference-default", "compose.md", "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-}\n"),
        ("env-reference-dollar", "run.md", "PASSWORD=$DB_PASSWORD ./run.sh\n"),
        ("jinja-reference", "vars.yaml", 'DB_PASSWORD: "{{ vault_db_password }}"\n'),
        ("python-format-reference", "app.ini", 'password: "%(db_password)s"\n'),
        ("angle-placeholder", "README.md", "password: <your-password>\n"),
        ("masked", "notes.md", "password = ********\n"),
        ("changeme", "README.md", "password: changeme\n"),
        ("already-redacted", "notes.md", "password = [REDACTED:password]\n"),
        ("empty-json", "config.md", '{"password": "", "token": null}\n'),
        ("token-budget", "notes.md", "token budget = 4096\n"),
        ("max-tokens", "config.yaml", "max_tokens: 4096\n"),
        ("token-count-prose", "notes.md", "The token count is 512 per chunk.\n"),
        ("api-key-header-name", "client.py", 'api_key_header = "X-Api-Key"\n'),
        ("python-environ", "settings.py", 'password = os.environ["DB_PASSWORD"]\n'),
        ("python-call", "db.py", "password = get_password()\n"),
        ("python-settings-attr", "bot.py", "token = settings.SLACK_TOKEN\n"),
        ("django-env", "settings.py", 'SECRET_KEY = env("DJANGO_SECRET_KEY")\n'),
        (
            "pydantic-type",
            "models.py",
            "class Login(BaseModel):\n    token: str\n    password: Optional[str] = None\n",
        ),
        ("password-hash-code", "auth.py", "password_hash = bcrypt.hash(password)\n"),
        ("password-file", "config.ini", "password_file = /run/secrets/db_password\n"),
        ("password-file-env", ".env", "DB_PASSWORD_FILE=/run/secrets/db\n"),
        ("secret-name", "values.yaml", "secret_name: billing-db\n"),
        ("token-url", "config.ini", "token_url = https://auth.example.com/oauth/token\n"),
        ("reset-password-prose", "help.md", "Reset your password: go to the portal and click Forgot.\n"),
        ("secret-prose", "notes.md", "The secret: always write the tests first.\n"),
        ("secret-sauce", "notes.md", "Our secret sauce is the Heron gateway.\n"),
        ("passwords-prose", "policy.md", "Passwords must be rotated every 90 days.\n"),
        ("bearer-prose", "api.md", "Bearer tokens expire after an hour.\n"),
        ("bearer-reference", "api.md", "Authorization: Bearer ${API_TOKEN}\n"),
        (
            "git-sha-prose",
            "CHANGELOG.md",
            "Fixed in commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 last week.\n",
        ),
        ("short-sha", "notes.md", "Reverted 3f2a9c1 and 8b7d6a5.\n"),
        ("uuid", "notes.md", "request id 123e4567-e89b-12d3-a456-426614174000 failed\n"),
        ("client-id-uuid", "config.yaml", "client_id: 8b7a6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d\n"),
        ("hex-color", "theme.yaml", "color: #ffaa00\n"),
        ("version", "setup.cfg", "version = 1.2.3-rc.1\n"),
        ("md5-checksum", "release.md", "checksum: 9a0364b9e99bb480dd25e1f0284c8555\n"),
        ("image-digest", "deploy.md", "image: ghcr.io/acme/ledger:1.4.2\n"),
        ("postgres-no-password", "README.md", "postgres://app@db.internal:5432/app\n"),
        ("postgres-env-reference", "README.md", "postgres://${DB_USER}:${DB_PASS}@db:5432/app\n"),
        ("git-ssh-remote", "README.md", "git clone git@github.com:acme/ledgerfox.git\n"),
        ("ssh-url", "README.md", "ssh://git@github.com:22/acme/repo.git\n"),
        ("https-port", "notes.md", "url: https://example.com:8443/path\n"),
        ("docker-port", "run.md", "docker run -p 8080:80 nginx\n"),
        ("psql-port", "run.md", "psql -h db -p 5432 -U app\n"),
        ("mysql-prompt", "run.md", "mysql -u root -p billing\n"),
        ("aws-profile", ".env", "export AWS_PROFILE=billing\n"),
        ("akia-mention", "notes.md", "AWS key ids start with AKIA and are 20 characters.\n"),
        ("timeout", "config.yaml", "timeout: 30\n"),
        ("author", "config.yaml", "author: Alice Ng\n"),
        ("passport", "travel.md", "passport: required for travel\n"),
        ("bypass", "config.yaml", "bypass: true\n"),
        ("auth-required", "config.yaml", "auth: required\n"),
        ("dict-key", "cart.py", 'key = "price"\n'),
        ("keyboard", "notes.md", "keyboard: dvorak\n"),
        ("phone", "notes.md", "Call +1 415-555-0132 about release 1.2.3 on 2024-03-01.\n"),
        ("public-key-name", "notes.md", "public_key_path = ~/.ssh/id_ed25519.pub\n"),
        ("password-prompt-flag", "cli.md", "ledger-sync --password-stdin < pw.txt\n"),
        ("secret-manager-ref", "config.yaml", "password: vault:secret/data/billing#password\n"),
        ("yaml-block", "config.yaml", "password: |\n"),
    ]
]
