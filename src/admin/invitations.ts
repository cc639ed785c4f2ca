// Inviting a person to an account: an admin names the account, the email and the role and gets a
// one-time token to send on (Datahus sends no email); the person accepts it with a name and a
// password and becomes a user of that account, able to log in. A token is accepted once, within
// INVITATION_TTL_MS; only its SHA-256 is stored.
import { createHash, randomBytes } from "node:crypto";
import { AppError, conflict, notFound } from "../errors.js";
import type { Invitation, PrismaClient, User, UserRole } from "../generated/prisma/client.js";
import { checkPassword, normalizeEmail } from "../identity/auth.service.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import { hashPassword } from "../identity/secrets.js";
import { logAdminAction } from "./admin-log.js";

export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export class InvitationService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Admin: invites `email` to the account as `role`; the token is returned here only. */
  async invite(
    caller: Caller,
    accountId: string,
    emailInput: string,
    role: UserRole,
  ): Promise<{ invitation: Invitation; token: string }> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const email = normalizeEmail(emailInput);
    const token = `dhi_${randomBytes(32).toString("base64url")}`;
    return this.prisma.$transaction(async (tx) => {
      const account = await tx.account.findUnique({ where: { id: accountId }, select: { id: true } });
      if (!account) throw notFound("Account");
      if (await tx.user.findUnique({ where: { email }, select: { id: true } })) {
        throw conflict("A user with this email already exists", { argument: "email" });
      }
      const invitation = await tx.invitation.create({
        data: {
          accountId,
          email,
          role,
          tokenHash: hashToken(token),
          invitedBy: who.userId,
          expiresAt: new Date(this.now().getTime() + INVITATION_TTL_MS),
        },
      });
      await logAdminAction(tx, who, "user.invite", { type: "Account", id: accountId }, { email, role });
      return { invitation, token };
    });
  }

  /** Accepts an invitation: the new user of the invited account. Once only, before it expires. */
  async accept(token: string, nameInput: string, password: string): Promise<User> {
    const name = nameInput.trim();
    if (name.length < 1 || name.length > 200) {
      throw new AppError("BAD_USER_INPUT", "Name must be 1 to 200 characters", { argument: "name" });
    }
    checkPassword(password);
    const passwordHash = await hashPassword(password);
    const invalid = new AppError("NOT_FOUND", "This invitation does not exist, was used or has expired");
    return this.prisma.$transaction(async (tx) => {
      const invitation = await tx.invitation.findUnique({ where: { tokenHash: hashToken(token) } });
      if (!invitation) throw invalid;
      const now = this.now();
      // The condition takes the row: a second acceptance waits, then matches nothing.
      const taken = await tx.invitation.updateMany({
        where: { id: invitation.id, acceptedAt: null, expiresAt: { gt: now } },
        data: { acceptedAt: now },
      });
      if (taken.count === 0) throw invalid;
      if (await tx.user.findUnique({ where: { email: invitation.email }, select: { id: true } })) {
        throw conflict("A user with this email already exists");
      }
      const user = await tx.user.create({
        data: {
          accountId: invitation.accountId,
          email: invitation.email,
          name,
          role: invitation.role,
          passwordHash,
        },
      });
      await tx.invitation.update({ where: { id: invitation.id }, data: { acceptedUserId: user.id } });
      return user;
    });
  }
}
