/**
 * The custom search attributes operators filter on in the Temporal UI and the API lists.
 * The one definition: workflows set them, the API queries them, and every Temporal server
 * we start (dev server, tests, docker compose) registers exactly this list.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const PmOperationKind = defineSearchAttributeKey('PmOperationKind', SearchAttributeType.KEYWORD);
export const PmEnvironment = defineSearchAttributeKey('PmEnvironment', SearchAttributeType.KEYWORD);
export const PmNodes = defineSearchAttributeKey('PmNodes', SearchAttributeType.KEYWORD_LIST);
export const PmRisk = defineSearchAttributeKey('PmRisk', SearchAttributeType.KEYWORD);
export const PmApprovalState = defineSearchAttributeKey('PmApprovalState', SearchAttributeType.KEYWORD);
export const PmRequester = defineSearchAttributeKey('PmRequester', SearchAttributeType.KEYWORD);
export const PmVmids = defineSearchAttributeKey('PmVmids', SearchAttributeType.KEYWORD_LIST);

export const searchAttributes = [
  PmOperationKind,
  PmEnvironment,
  PmNodes,
  PmRisk,
  PmApprovalState,
  PmRequester,
  PmVmids,
] as const;
