/**
 * The worker's check of an approval decision's signature (lib/approvals/signature.ts), run
 * by the workflow before a decision counts. The key is resolved here, in the worker's
 * process; only the verdict goes back to the workflow.
 */
import { signatureMatches, type SignedFields } from '../lib/approvals/signature.js';
import { describeSecretRef, resolveSecret } from '../lib/config/secrets.js';
import type { AppConfig } from '../lib/config/schema.js';

export type SignatureVerdict = { ok: true } | { ok: false; why: string };

export function createApprovalActivities(deps: { config: Pick<AppConfig, 'approvals'> }) {
  let key: Promise<string> | undefined;
  const signingKey = () =>
    (key ??= resolveSecret(deps.config.approvals.signing_key).catch((err) => {
      key = undefined;
      throw err;
    }));

  return {
    async verifyApprovalSignature(args: { fields: SignedFields; signature?: string }): Promise<SignatureVerdict> {
      if (!args.signature) return { ok: false, why: 'the decision is not signed (decisions are made through the API)' };
      let secret: string;
      try {
        secret = await signingKey();
      } catch {
        return {
          ok: false,
          why: `the worker cannot check signatures: approvals.signing_key (${describeSecretRef(deps.config.approvals.signing_key)}) is not available`,
        };
      }
      // A captured signature names one operation, decision, actor and plan version: sent again it
      // meets the workflow's own rules (already decided, stale plan version), so no expiry is needed.
      return signatureMatches(secret, args.fields, args.signature)
        ? { ok: true }
        : { ok: false, why: 'the decision’s signature does not match it' };
    },
  };
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
