/** Public entry point of the dynamokv TypeScript client. */
export { DynamoClient, type DynamoClientOptions, type DeleteOptions, type GetOptions, type PutOptions, type ReadOptions, type UpdateOptions, type WriteOptions } from './client';
export { DynamoError, isDynamoError, type ClientErrorCode, type DynamoErrorCode, type ServerErrorCode } from './errors';
export type { GetResult, PutResult, Quorum, Resolved, Sibling, SiblingResolver } from './types';
export type { MemberInfo, MemberState, NodeStatus, RingInfo } from './admin';
export type { RoutingMode } from './routing';
