#!/usr/bin/env node
// Issues a user token for the collector's GET /v1/profile, the way a site's or app's
// back end does after it has signed the user in. The secret is shared with the collector
// (--profile-secret / THREADLINE_PROFILE_SECRET) and never reaches a browser or an app:
// the back end hands the token to its signed-in user, whose SDK sends it as
// `Authorization: Bearer <token>`.
//
//   THREADLINE_PROFILE_SECRET=s3cret node examples/token-issuer/issue.mjs u-123 [ttlSeconds]
//
// token = <exp> "." base64url_nopad(HMAC-SHA256(secret, <exp> "." <userId>))
import { createHmac } from 'node:crypto';

export function issueToken(secret, userId, exp) {
  const mac = createHmac('sha256', secret).update(`${exp}.${userId}`).digest('base64url');
  return `${exp}.${mac}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [userId, ttl = '3600'] = process.argv.slice(2);
  const secret = process.env.THREADLINE_PROFILE_SECRET;
  if (!userId || !secret) {
    console.error('usage: THREADLINE_PROFILE_SECRET=<secret> node issue.mjs <userId> [ttlSeconds]');
    process.exit(2);
  }
  console.log(issueToken(secret, userId, Math.floor(Date.now() / 1000) + Number(ttl)));
}
