import net from 'node:net'

/** Whether only this machine can reach an address the server binds (127.0.0.0/8, ::1, localhost). */
export function isLoopback(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true
  return net.isIPv4(address) && address.startsWith('127.')
}
