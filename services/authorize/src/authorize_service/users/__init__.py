"""Users of a tenant's database connection: storage, Argon2id passwords, the password rule,
login checks and the `/api/v2/users` Management API.

Import from the modules themselves (`users.repository`, `users.login`, …): this package
imports nothing, so that the app's resources can use them without an import cycle."""
