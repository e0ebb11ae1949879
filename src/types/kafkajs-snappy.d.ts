// kafkajs-snappy ships no types; it exports a kafkajs codec factory.
declare module "kafkajs-snappy" {
  const SnappyCodec: () => unknown;
  export default SnappyCodec;
}
