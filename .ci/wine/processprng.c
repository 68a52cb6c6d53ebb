/*
 * bcryptprimitives.dll shim for Wine versions that lack ProcessPrng
 * (Debian's Wine 8.0). Go >= 1.24 binaries import ProcessPrng from
 * bcryptprimitives.dll for runtime randomness and fail to start without it.
 * This DLL implements it with BCryptGenRandom, which Wine has.
 * Test-only: .ci/setup-wine builds it and copies it into the Wine prefix;
 * it is never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	/* BCryptGenRandom takes a ULONG length: feed large requests in chunks. */
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
	(void)inst; (void)reason; (void)reserved;
	return TRUE;
}
