// src/storage/drivers/s3-sdk.ts in the single executable's bundle: a plain require, which esbuild
// bundles and which runs only when an S3 storage first needs its client.
'use strict'
exports.loadS3Sdk = () => require('@aws-sdk/client-s3')
