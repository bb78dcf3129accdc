import {createRequire} from 'node:module'

type S3Sdk = typeof import('@aws-sdk/client-s3')

/**
 * The AWS SDK's S3 client, loaded on first use. Required, not imported: the SDK is CommonJS,
 * and importing it from ESM also has Node scan its source for export names, which made loading
 * it take 0.11-0.14 s instead of 0.07 s. The single executable's bundle (scripts/package.mjs)
 * puts scripts/sea/s3-sdk.cjs in this file's place: a plain require, which esbuild bundles and
 * still runs only on first use.
 */
export function loadS3Sdk(): S3Sdk {
  return createRequire(import.meta.url)('@aws-sdk/client-s3') as S3Sdk
}
