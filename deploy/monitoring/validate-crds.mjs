// Validates Prometheus Operator resources (a JSON array of them, argv[2]) against the
// operator's CRD schemas as packaged by @kubernetes-models/prometheus-operator; run by
// check.sh. A kind it does not know is an error, so nothing passes unchecked.
import { readFileSync } from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const models = { ServiceMonitor, PrometheusRule };
let failed = 0;
for (const doc of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  const Model = models[doc.kind];
  try {
    if (!Model || doc.apiVersion !== Model.apiVersion) {
      throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
    }
    new Model(doc).validate();
  } catch (e) {
    console.error(`${doc.kind}/${doc.metadata?.name}: ${e.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
