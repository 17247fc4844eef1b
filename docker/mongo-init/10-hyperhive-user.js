// Runs once, when MongoDB starts on an empty data volume (docker-entrypoint-initdb.d), as the root
// user: creates the application's own user, with readWrite on the hyperhive database and nothing else.
// The API and the workers connect as this user; the root user is for administration only.
const user = process.env.HYPERHIVE_DB_USER;
const pwd = process.env.HYPERHIVE_DB_PASSWORD;
if (!user || !pwd) {
  throw new Error("set HYPERHIVE_DB_USER and HYPERHIVE_DB_PASSWORD in .env");
}
db.getSiblingDB("hyperhive").createUser({
  user: user,
  pwd: pwd,
  roles: [{ role: "readWrite", db: "hyperhive" }],
});
print(`created MongoDB user ${user} (readWrite on hyperhive)`);
