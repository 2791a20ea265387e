// The official Node client (npm `replicate`) against Cogplane: prints one JSON line of results.
// Usage: node compat.mjs <baseUrl with /v1> <token> <owner/name> <version> <stream owner/name:version>
import Replicate from "replicate";

const [baseUrl, auth, model, version, streaming] = process.argv.slice(2);
const replicate = new Replicate({ auth, baseUrl, useFileOutput: false });
const results = {};

results.account = (await replicate.accounts.current()).username;
results.model = (await replicate.models.get(...model.split("/"))).name;
results.version = (await replicate.models.versions.get(...model.split("/"), version)).id;
results.runVersion = await replicate.run(`${model}:${version}`, { input: { name: "node" } });
results.runModel = await replicate.run(model, { input: { name: "latest" } });

const created = await replicate.predictions.create({ version, input: { name: "poll" } });
const waited = await replicate.wait(created, { interval: 100 });
results.waitedStatus = waited.status;
results.waitedOutput = waited.output;

const pages = [];
for await (const page of replicate.paginate(replicate.predictions.list)) {
  pages.push(...page);
  break;
}
results.listed = pages.length;

let text = "";
for await (const event of replicate.stream(streaming, { input: { prompt: "one two three", delay: 0 } })) {
  if (event.event === "output") text += event.data;
}
results.streamed = text;

results.hardware = (await replicate.hardware.list()).map((h) => h.sku).includes("cpu");
console.log(JSON.stringify(results));
