// The private Tor network of the lab and the pieces that run the image's tor
// against it, all on the one lab topology (e2e/src/lab):
//   startTorNet({lab, relays, exits}) → TorNet          3 authorities + relays/exits + DNS + HTTP, in the lab's Internet
//   startSutTor({lab, policy, files, labDropIn}) → SutTor the emitted torrc as the tor uid, in a private mount namespace
//   openControl(lab, addr, port, cookie)                 ControlPort client as root
//   httpAs / lookupAs / classify                         requests and lookups as a uid; uplink flows by class
//   startBridge(lab, net) → Bridge                       an unpublished obfs4 bridge (Debian's tor + obfs4proxy); its line from its state directory
//   startCensor(lab) → Censor                            the LAN router drops what the sut sends towards some addresses
//   startHelloCapture(ns, iface)                         TLS ClientHellos leaving an interface (the kernel's packet filter)

export {
  type Bridge,
  BRIDGE_ADDRESS,
  type Censor,
  type HelloCapture,
  obfs4LineOf,
  startBridge,
  startCensor,
  startHelloCapture,
  TLS_CLIENT_HELLO_BPF,
} from './bridge.js';
export { classify, type Flow, type FlowClass, type HttpRequest, type HttpResult, httpAs, type LookupResult, lookupAs, type Who } from './probes.js';
export { type Control, labDefaults, openControl, type SutTor, type SutTorOptions, startSutTor, unitBinds } from './sut-tor.js';
export { type HttpSite, LAB_SITES, parseConsensus, type Role, startTorNet, type TorNet, type TorNetOptions, type TorNode } from './tornet.js';
