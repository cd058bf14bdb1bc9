// The private Tor network of the lab (SPEC §5) and the pieces that run the
// image's tor against it:
//   startTorNet({ns, scripts, relays, exits}) → TorNet   3 authorities + relays/exits + DNS + HTTP, in a namespace
//   startSutTor({ns, policy, files, labDropIn}) → SutTor  the emitted torrc as the tor uid, in a private mount namespace
//   openControl(ns, addr, port, cookie, scripts)         ControlPort client as root
//   httpAs / lookupAs / classify                         requests and lookups as a uid; uplink flows by class
export { startTorNet, parseConsensus, LAB_SITES, type TorNet, type TorNode, type TorNetOptions, type HttpSite, type Role } from './tornet.js';
export { startSutTor, openControl, labDefaults, unitBinds, type SutTor, type SutTorOptions, type Control } from './sut-tor.js';
export { httpAs, lookupAs, classify, type Who, type HttpResult, type HttpRequest, type LookupResult, type Flow, type FlowClass } from './probes.js';
export { installScripts, NODE, type Scripts } from './scripts.js';
